import { rm } from "node:fs/promises";

// Scratch directories are removed when the whole benchmark is done, not when each grid stops.
// Removing tens of thousands of directories in the middle of a run made every directory made
// after it dearer: on ext4 without a journal (this machine's root), a new inode is never one
// freed within the last minute or more, and each such free inode is looked at and skipped. A
// retry's copy makes three directories and the floor's copy one, so a removal between phases
// weighed on the grid three times as much as on its floor.
const scratch: string[] = [];

/** Removes `path` (recursively) once the benchmark is done. */
export function removeWhenDone(path: string): void {
  scratch.push(path);
}

/** Runs a benchmark's main, removes its scratch directories, and exits with its outcome. */
export function runBenchmark(main: () => Promise<void>): void {
  const removeScratch = () => Promise.all(scratch.map((path) => rm(path, { recursive: true, force: true })));
  main().then(
    async () => {
      await removeScratch();
      process.exit(0);
    },
    async (error: unknown) => {
      process.stderr.write(`benchmark failed: ${(error as Error).stack ?? String(error)}\n`);
      await removeScratch().catch(() => undefined);
      process.exit(1);
    },
  );
}
