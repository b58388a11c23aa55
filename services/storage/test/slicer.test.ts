import { createSlicer } from "../src/slicer";
import { turnCounter } from "./helpers";

/** Keeps the thread busy for `millis`, as a slow system call would. */
function busyFor(millis: number): void {
  const until = performance.now() + millis;
  while (performance.now() < until) {
    // spinning on purpose
  }
}

test("work called while the slice has time runs at once, in the caller's tick", async () => {
  const inSlice = createSlicer(50);
  let ran = false;
  const answer = inSlice(() => {
    ran = true;
    return 7;
  });
  expect(ran).toBe(true);
  await expect(answer).resolves.toBe(7);
});

test("work slower than a slice runs one job a turn, in the order it was called", async () => {
  const inSlice = createSlicer(1);
  const turns = turnCounter();
  const ranAt: Array<{ job: number; turn: number }> = [];
  await Promise.all(
    Array.from({ length: 6 }, (_, job) =>
      inSlice(() => {
        busyFor(2);
        ranAt.push({ job, turn: turns.now() });
      }),
    ),
  );
  turns.stop();
  expect(ranAt.map((entry) => entry.job)).toEqual([0, 1, 2, 3, 4, 5]);
  const distinctTurns = new Set(ranAt.map((entry) => entry.turn));
  expect(distinctTurns.size).toBe(6);
});

test("a job that throws rejects its own answer only; the jobs queued behind it still run", async () => {
  const inSlice = createSlicer(1);
  const answers = [
    inSlice(() => busyFor(2)),
    inSlice(() => {
      throw new Error("disk on fire");
    }),
    inSlice(() => "after"),
  ];
  await expect(answers[0]).resolves.toBeUndefined();
  await expect(answers[1]).rejects.toThrow("disk on fire");
  await expect(answers[2]).resolves.toBe("after");
});

test("thousands of jobs, each slower than a slice, each run exactly once", async () => {
  const inSlice = createSlicer(0.01);
  const runs = new Array<number>(3000).fill(0);
  await Promise.all(
    runs.map((_, job) =>
      inSlice(() => {
        busyFor(0.02);
        runs[job] = (runs[job] as number) + 1;
      }),
    ),
  );
  expect(new Set(runs)).toEqual(new Set([1]));
});
