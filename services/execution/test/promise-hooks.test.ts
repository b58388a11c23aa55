import { AsyncLocalStorage } from "node:async_hooks";
import { Outcome } from "@rgrid/proto";
import { finishedExecution, queuedExecution } from "./flows";
import { startHarness } from "./harness";

// On Node 20 the first AsyncLocalStorage run turns on promise hooks for the rest of the process,
// and every promise of every request then calls them (db/orm-transaction.ts). MikroORM's flush
// and transactional run one; the service's requests must not.
test("the service's writes run no AsyncLocalStorage, so no request turns on promise hooks", async () => {
  const runs = jest.spyOn(AsyncLocalStorage.prototype, "run");
  const entered = jest.spyOn(AsyncLocalStorage.prototype, "enterWith");
  const h = await startHarness(); // issues an API key: an account and a key, in one transaction
  try {
    // Registration, a claim and a completion, a retry, a cancel with its audit entry, and a
    // bulk retry's operation with its items.
    const failed = await finishedExecution(h, Outcome.FAILED);
    await finishedExecution(h, Outcome.FAILED);
    await h.alice.retryExecution({ executionId: failed.id, requestId: "one" });
    const queued = await queuedExecution(h);
    await h.alice.cancelExecution({ executionId: queued.id, reason: "not needed" });
    const started = await h.alice.retryWhere({ where: {}, requestId: "all-failed" });
    expect(started.matched).toBeGreaterThan(0);

    expect(runs).not.toHaveBeenCalled();
    expect(entered).not.toHaveBeenCalled();
  } finally {
    runs.mockRestore();
    entered.mockRestore();
    await h.close();
  }
});
