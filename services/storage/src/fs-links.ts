// How the local-file store links a copy in place: with synchronous system calls, in short slices.
// A copy is a few metadata operations per object (make the target's directories, link, read the
// size back), each a few tens of microseconds on a local disk. Through the thread pool, each cost
// more than that in hand-offs between threads, and the four steps of an object waited on each
// other: a retry's copy of a script and three inputs took 2 ms there, against 0.4 ms this way.
// The store is meant for a local disk (docs/architecture.md); on it, no call here blocks for
// long, and slices of at most SLICE_MILLIS keep other requests served in between.
import { linkSync, mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { errorCode, isPathConflict, LINK_FALLBACK_CODES } from "./fs-errors";
import { createSlicer } from "./slicer";

/** The longest run of synchronous file-system work before other work gets a turn. */
const SLICE_MILLIS = 2;
/** Directories remembered as made; enough for the targets of many concurrent copies. */
const REMEMBERED_DIRECTORIES = 1024;

export interface Linker {
  /**
   * Links `target` to `source`, making the target's directories (private) first, and answers
   * with the size of the linked file; undefined when the target is not free (taken, or in the
   * way of a file) or the file system cannot link. A missing source is thrown (ENOENT).
   */
  link(source: string, target: string): Promise<number | undefined>;
}

export interface LinkerOptions {
  root: string;
  directoryMode: number;
}

export function createLinker(options: LinkerOptions): Linker {
  const made = new RecentDirectories(REMEMBERED_DIRECTORIES);
  const inSlice = createSlicer(SLICE_MILLIS);

  /** Makes `dir` top-down from the first level below the root, which is there already (else made with it). */
  const makeDirectory = (dir: string): void => {
    const parent = dirname(dir);
    if (parent !== options.root && dirname(parent) !== options.root && !made.has(parent)) {
      makeDirectory(parent);
    }
    try {
      mkdirSync(dir, { mode: options.directoryMode });
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT") {
        // A parent remembered as made was removed since.
        mkdirSync(dir, { recursive: true, mode: options.directoryMode });
      } else if (code !== "EEXIST") {
        throw error;
      }
    }
    made.add(dir);
  };

  const linkNow = (source: string, target: string): number | undefined => {
    const dir = dirname(target);
    const remembered = made.has(dir);
    try {
      if (!remembered) {
        makeDirectory(dir);
      }
      linkSync(source, target);
    } catch (error) {
      if (remembered && errorCode(error) === "ENOENT") {
        // The directory was removed since it was made: made again, then one more try.
        made.forget(dir);
        return linkNow(source, target);
      }
      if (LINK_FALLBACK_CODES.has(errorCode(error) ?? "") || isPathConflict(error)) {
        return undefined;
      }
      throw error;
    }
    // One file under two names: its size is the source's as it was linked.
    return statSync(target).size;
  };

  return {
    link: (source, target) => inSlice(() => linkNow(source, target)),
  };
}

/** The most recently made directories, the oldest forgotten first. A hint: a directory may have been removed since. */
class RecentDirectories {
  private readonly paths = new Set<string>();

  constructor(private readonly limit: number) {}

  has(path: string): boolean {
    return this.paths.has(path);
  }

  add(path: string): void {
    this.paths.delete(path);
    this.paths.add(path);
    if (this.paths.size > this.limit) {
      const [oldest] = this.paths;
      this.paths.delete(oldest as string);
    }
  }

  forget(path: string): void {
    this.paths.delete(path);
  }
}
