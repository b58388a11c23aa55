// Empty directories made ahead of need, so that a copy's new directories cost a rename instead
// of a mkdir. On ext4 a mkdir allocates an inode and a directory block: the three a retry's copy
// needs (the execution's, its script's and its inputs') took 0.35–0.9 ms here, a rename of an
// empty directory 0.03–0.05 ms. The spares are made between copies, in turns of the event loop of
// their own, with synchronous calls in slices of at most SLICE_MILLIS: through the thread pool a
// mkdir cost 75–85 µs of CPU here against 26–32 µs synchronously (as with the links of
// fs-links.ts, the hand-off between threads cost more than the call).
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { errorCode } from "./fs-errors";

/** The longest run of mkdirs before other work gets a turn. */
const SLICE_MILLIS = 2;

export interface SpareDirectories {
  /**
   * Moves a spare (empty, private) directory to `path` and answers true; false when no spare is
   * ready or the move failed (`path` exists with entries, its parent is missing), for the caller
   * to make the directory itself. Like a mkdir that finds the directory there, a move onto an
   * existing EMPTY directory leaves an empty directory there.
   */
  takeAs(path: string): boolean;
  /** Resolves once the spares being made (if any) are ready. */
  settled(): Promise<void>;
  /** Makes no more; resolves once none is being made, so the directory can be removed. */
  stop(): Promise<void>;
}

export interface SpareDirectoryOptions {
  /** Where spares wait, each process's in a directory of its own: on the store's own file system (a rename cannot cross file systems), never under a key's path. */
  dir: string;
  mode: number;
  /** How many are kept ready; made again, as a batch, once half are taken. */
  keep: number;
  /** Told when spares cannot be made; the store then makes its directories as they are needed. */
  onError(error: unknown): void;
}

/** Never has a spare: copies make every directory themselves. */
const NO_SPARES: SpareDirectories = { takeAs: () => false, settled: async () => undefined, stop: async () => undefined };

/**
 * Starts keeping spares in a directory of this process's own under `options.dir`; what earlier
 * processes left there is removed first. A process still running on the same objects (one being
 * replaced) then finds its spares gone and makes its directories itself.
 */
export function keepSpareDirectories(options: SpareDirectoryOptions): SpareDirectories {
  const dir = join(options.dir, randomBytes(8).toString("hex"));
  try {
    rmSync(options.dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: options.mode });
  } catch (error) {
    options.onError(error);
    return NO_SPARES;
  }
  const ready: string[] = [];
  let made = 0;
  let stopped = false;
  // Once making one failed (the file system full, the directory removed), no more are made:
  // one warning, and copies make their directories as before.
  let failed = false;
  /** The refill under way, if any: resolved when the spares are all there again, or none can be made. */
  let refilling: { done: Promise<void>; finish: () => void } | undefined;

  /** One slice of the refill under way, then the next turn's, until the spares are all there. */
  const refillSlice = (): void => {
    const started = performance.now();
    try {
      while (!stopped && ready.length < options.keep) {
        if (performance.now() - started >= SLICE_MILLIS) {
          setImmediate(refillSlice);
          return;
        }
        const path = join(dir, String(made++));
        mkdirSync(path, { mode: options.mode });
        ready.push(path);
      }
    } catch (error) {
      failed = true;
      options.onError(error);
    }
    refilling?.finish();
    refilling = undefined;
  };
  const startRefill = () => {
    if (refilling === undefined) {
      let finish!: () => void;
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      refilling = { done, finish };
      setImmediate(refillSlice);
    }
  };
  startRefill();

  return {
    takeAs(path) {
      const spare = ready.pop();
      if (!failed && !stopped && ready.length <= options.keep / 2) {
        startRefill();
      }
      if (spare === undefined) {
        return false;
      }
      try {
        renameSync(spare, path);
        return true;
      } catch (error) {
        if (errorCode(error) === "EXDEV") {
          // The target is on another file system than the spares: none can ever be moved there.
          failed = true;
        } else if (existsSync(spare)) {
          // The target was in the way (it has entries, or its parent is missing): the spare serves the next one.
          ready.push(spare);
        }
        return false;
      }
    },
    async settled() {
      await refilling?.done;
    },
    async stop() {
      stopped = true;
      await refilling?.done;
    },
  };
}
