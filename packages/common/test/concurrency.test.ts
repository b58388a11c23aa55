import { batchedWhileBusy, mapWithLimit, sharedWhileRunning } from "../src/concurrency";

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe("mapWithLimit", () => {
  it("keeps order and never exceeds the limit", async () => {
    let inFlight = 0;
    let peak = 0;
    const results = await mapWithLimit([5, 1, 4, 2, 3, 6, 7], 3, async (value) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      for (let i = 0; i < value; i++) {
        await tick();
      }
      inFlight--;
      return value * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 60, 70]);
    expect(peak).toBe(3);
  });

  it("starts nothing new after a failure, waits for running calls, and throws the first failure", async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = mapWithLimit([0, 1, 2, 3, 4, 5], 2, async (value) => {
      started.push(value);
      await tick();
      if (value === 1) {
        throw new Error("item 1 failed");
      }
      await tick();
      finished.push(value);
      return value;
    });
    await expect(run).rejects.toThrow("item 1 failed");
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([0]);
  });

  it("handles no items", async () => {
    expect(await mapWithLimit([], 4, async () => 1)).toEqual([]);
  });
});

describe("sharedWhileRunning", () => {
  it("gives a call with a running key that call's promise, and starts afresh once it settled", async () => {
    const shared = sharedWhileRunning<number>();
    let started = 0;
    const start = async () => {
      started++;
      await tick();
      return started;
    };
    const [first, second, other] = await Promise.all([shared("a", start), shared("a", start), shared("b", start)]);
    expect([first, second]).toEqual([2, 2]);
    expect(other).toBe(2);
    expect(started).toBe(2);
    expect(await shared("a", start)).toBe(3);
  });

  it("lets a failed attempt's key start again", async () => {
    const shared = sharedWhileRunning<string>();
    await expect(shared("a", () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(await shared("a", async () => "up")).toBe("up");
  });
});

describe("batchedWhileBusy", () => {
  test("sends the first call alone and the calls made while it is on its way together, each answered with its own outcome", async () => {
    const batches: number[][] = [];
    const call = batchedWhileBusy<number, number>(3, async (batch) => {
      batches.push(batch);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return batch.map((item) => (item % 4 === 3 ? { error: new Error(`no ${item}`) } : { value: item * 10 }));
    });
    const outcomes = await Promise.allSettled([1, 2, 3, 4, 5].map(call));
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
    expect(outcomes.map((outcome) => (outcome.status === "fulfilled" ? outcome.value : (outcome.reason as Error).message))).toEqual([10, 20, "no 3", 40, 50]);
    // Idle again: the next call goes at once.
    await expect(call(6)).resolves.toBe(60);
    expect(batches.at(-1)).toEqual([6]);
  });

  test("fails every call of a batch whose send throws, or answers too few, and goes on with the next", async () => {
    let sends = 0;
    const call = batchedWhileBusy<string, string>(10, async (batch) => {
      sends++;
      if (sends === 1) throw new Error("unreachable");
      return sends === 2 ? [] : batch.map((item) => ({ value: item }));
    });
    const first = await Promise.allSettled([call("a")]);
    const second = await Promise.allSettled([call("b")]);
    expect([first[0]?.status, (first[0] as PromiseRejectedResult).reason.message]).toEqual(["rejected", "unreachable"]);
    expect((second[0] as PromiseRejectedResult).reason.message).toBe("a batch of 1 was answered for 0");
    await expect(call("c")).resolves.toBe("c");
  });
});
