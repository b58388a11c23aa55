import type { ConnectRouter } from "@connectrpc/connect";
import { registerHealth, registerReflection } from "@rgrid/common";
import { ExecutionService, Health, RunnerService } from "@rgrid/proto";
import { createAuditHandlers } from "./audit/handlers";
import { createExecutionHandlers } from "./executions/handlers";
import type { ExecutionHandlerDeps } from "./executions/handlers";
import { createRunnerHandlers } from "./runners/handlers";
import type { RunnerHandlerDeps } from "./runners/handlers";
import { createSessionHandlers } from "./sessions/handlers";
import type { SessionHandlerDeps } from "./sessions/handlers";

export type RouteDeps = ExecutionHandlerDeps & RunnerHandlerDeps & SessionHandlerDeps;

/** Every service this process answers, each built from its dependencies. */
export function createRoutes(deps: RouteDeps): (router: ConnectRouter) => void {
  // Built once: handlers keep per-process state (in-flight retries) that every transport or
  // connection serving these routes must share.
  const executionHandlers = { ...createExecutionHandlers(deps), ...createSessionHandlers(deps), ...createAuditHandlers(deps) };
  const runnerHandlers = createRunnerHandlers(deps);
  return (router) => {
    // Connect ignores unknown JSON fields and enum names by default, which turns
    // {"statuses": ["EXECUTION_STATUS_TYPO"]} into "every status"; the public API refuses them
    // (InvalidArgument) as the proto3 JSON mapping does by default.
    router.service(ExecutionService, executionHandlers, { jsonOptions: { ignoreUnknownFields: false } });
    router.service(RunnerService, runnerHandlers);
    registerHealth(router, [ExecutionService.typeName, RunnerService.typeName]);
    registerReflection(router, [ExecutionService, RunnerService, Health]);
  };
}
