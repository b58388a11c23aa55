import type { Execution } from "@rgrid/proto";
import { Outcome } from "@rgrid/proto";
import { Execution as ExecutionRecord } from "../src/db/entities";
import type { Harness } from "./harness";
import { executionRequest, uploadAll } from "./harness";

/** Creates an execution, uploads its files into the fake store and confirms: it is queued. */
export async function queuedExecution(h: Harness, runtime = "python"): Promise<Execution> {
  const request = executionRequest({ runtime });
  const created = await h.alice.createExecution(request);
  uploadAll(h.storage, created.execution!, request);
  return (await h.alice.confirmUploads({ executionId: created.execution!.id })).execution!;
}

export async function registeredRunner(h: Harness, runtimes = ["python", "node"]): Promise<string> {
  return (await h.runner.registerRunner({ name: "test-runner", runtimes })).runnerId;
}

/** A queued execution that a runner claimed and reported as `outcome`. */
export async function finishedExecution(h: Harness, outcome = Outcome.FAILED): Promise<Execution> {
  const queued = await queuedExecution(h);
  const runnerId = await registeredRunner(h);
  const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  if (claim.assignment?.execution?.id !== queued.id) {
    throw new Error("the runner did not claim the execution just queued");
  }
  await h.runner.completeExecution({
    runnerId,
    executionId: queued.id,
    outcome,
    exitCode: outcome === Outcome.COMPLETED ? 0 : 3,
    errorMessage: outcome === Outcome.COMPLETED ? "" : "ConnectionResetError: peer went away",
  });
  return (await h.alice.getExecution({ executionId: queued.id })).execution!;
}

/** How many executions the database holds, retries included. */
export const countExecutions = (h: Harness): Promise<number> => h.db.fork().count(ExecutionRecord, {});
