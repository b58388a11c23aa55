import { getEventListeners } from "node:events";
import { ExecutionActivity } from "../src/executions/execution-activity";

const LONG_WAIT = 60_000;

describe("ExecutionActivity", () => {
  test("a notification between the watch and the wait is not lost: the wait returns at once", async () => {
    const activity = new ExecutionActivity();
    const watch = activity.watch("exec_a");
    activity.notify("exec_a"); // while the stream was still reading the database
    expect(watch.changed).toBe(true);
    await watch.wait(LONG_WAIT, new AbortController().signal); // would hang the test if lost
    expect(activity.watchedExecutions).toBe(0);
  });

  test("a waiting watch wakes on its own execution's notification, not on another's", async () => {
    const activity = new ExecutionActivity();
    const followingA = activity.watch("exec_a");
    const followingB = activity.watch("exec_b");
    let woken = false;
    const waiting = followingA.wait(LONG_WAIT, new AbortController().signal).then(() => {
      woken = true;
    });
    for (let append = 0; append < 100; append++) {
      activity.notify("exec_b");
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(woken).toBe(false);
    expect(followingA.changed).toBe(false);
    expect(followingB.changed).toBe(true);

    activity.notify("exec_a");
    await waiting;
    expect(woken).toBe(true);
    expect(activity.watchedExecutions).toBe(0);
  });

  test("every watch of one execution wakes together", async () => {
    const activity = new ExecutionActivity();
    const watches = [activity.watch("exec_a"), activity.watch("exec_a"), activity.watch("exec_a")];
    const waits = watches.map((watch) => watch.wait(LONG_WAIT, new AbortController().signal));
    activity.notify("exec_a");
    await Promise.all(waits);
    expect(watches.every((watch) => watch.changed)).toBe(true);
  });

  test("nothing is left behind however the waits end: notified, timed out, aborted or stopped", async () => {
    const activity = new ExecutionActivity();
    const stopping = new AbortController();
    for (let round = 0; round < 1000; round++) {
      const notified = activity.watch(`exec_${round}_n`);
      const notifiedWait = notified.wait(LONG_WAIT, stopping.signal);
      activity.notify(`exec_${round}_n`);
      await notifiedWait;

      await activity.watch(`exec_${round}_t`).wait(1, stopping.signal);

      const call = new AbortController();
      const abortedWait = activity.watch(`exec_${round}_a`).wait(LONG_WAIT, call.signal);
      call.abort();
      await abortedWait;

      activity.watch(`exec_${round}_s`).stop();
      // Shared by many watches of one execution, one of which leaves early.
      const early = activity.watch("exec_shared");
      const staying = activity.watch("exec_shared");
      early.stop();
      const stayingWait = staying.wait(LONG_WAIT, stopping.signal);
      activity.notify("exec_shared");
      await stayingWait;
    }
    expect(activity.watchedExecutions).toBe(0);
    expect(getEventListeners(stopping.signal, "abort")).toHaveLength(0);
  });

  test("an aborted signal or a zero timeout returns at once and forgets the watch", async () => {
    const activity = new ExecutionActivity();
    const aborted = new AbortController();
    aborted.abort();
    await activity.watch("exec_a").wait(LONG_WAIT, aborted.signal);
    await activity.watch("exec_a").wait(0, new AbortController().signal);
    expect(activity.watchedExecutions).toBe(0);
  });
});
