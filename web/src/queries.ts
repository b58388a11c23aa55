import { createConnectQueryKey } from "@connectrpc/connect-query";
import type { QueryClient } from "@tanstack/react-query";
import { isTerminal } from "./format";
import { ExecutionService, type ExecutionStatus } from "./proto";

/** Rows per page of an executions table. */
export const PAGE_SIZE = 50;

/** How often what is shown is re-read while any of it is still running or waiting to run. */
export const LIVE_REFRESH_MS = 2000;
/** Once all of it has finished, only a retry made elsewhere can change it: re-read rarely. */
const SETTLED_REFRESH_MS = 10_000;

/** Entries are added only when someone acts (or an automatic retry is made): re-read as rarely. */
export const AUDIT_REFRESH_MS = SETTLED_REFRESH_MS;

/** The refresh interval for a view showing executions in these statuses. */
export function refreshEvery(statuses: readonly ExecutionStatus[]): number {
  return statuses.every(isTerminal) ? SETTLED_REFRESH_MS : LIVE_REFRESH_MS;
}

/** After a change (retry, cancel): every execution, list and batch shown is re-read. */
export function invalidateExecutions(queryClient: QueryClient): Promise<void> {
  return queryClient.invalidateQueries({
    queryKey: createConnectQueryKey({ schema: ExecutionService, cardinality: undefined }),
  });
}

/** After the log stream reported a new status: that execution's own record is re-read. */
export function invalidateExecution(queryClient: QueryClient, executionId: string): Promise<void> {
  return queryClient.invalidateQueries({
    queryKey: createConnectQueryKey({ schema: ExecutionService.method.getExecution, input: { executionId }, cardinality: "finite" }),
  });
}
