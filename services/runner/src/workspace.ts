// One fresh working directory per execution: created with the script and inputs at their
// relative names, searched for the files the script produced, and removed afterwards.

import type { Stats } from "node:fs";
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import * as path from "node:path";
import type { FileDigest } from "@rgrid/common";
import { digestFile, relativePathProblem } from "@rgrid/common";

export interface Workspace {
  /** Absolute path of the working directory; also the script's HOME. */
  readonly dir: string;
  /**
   * Puts the script's or an input's file at `name`: `obtain` writes it at the path it is given
   * (a download through its grant, say), verified to be `expected`.
   */
  fetch(name: string, expected: FileDigest, obtain: (target: string) => Promise<void>): Promise<void>;
  /** Files the script created or changed, in name order. */
  findOutputs(limit: number): Promise<OutputScan>;
  /** Gives the directory and everything in it to the uid/gid the script runs as. */
  handOver(uid: number): Promise<void>;
  remove(): Promise<void>;
}

export interface OutputFile {
  name: string;
  path: string;
  sizeBytes: number;
  sha256: string;
}

export interface OutputScan {
  files: OutputFile[];
  /** There were more outputs than the limit; the walk stopped at the first one beyond it. */
  overLimit: boolean;
  /** Names that cannot travel as object keys (e.g. control characters), not collected. */
  unsafeNames: string[];
}

export class UnsafePathError extends Error {
  constructor(name: string, problem: string) {
    super(`file name ${JSON.stringify(name)} ${problem}`);
    this.name = "UnsafePathError";
  }
}

/** What a fetched file looked like on disk, to tell untouched inputs from changed ones cheaply. */
interface FetchedFile {
  digest: FileDigest;
  stats: Stats;
}

/**
 * `sharedRoot`: scripts run as other users, who must be able to pass through the root to their
 * own directory (0711) but neither list it nor enter anyone else's (each is 0700, its own uid).
 */
export async function createWorkspace(root: string, executionId: string, sharedRoot = false): Promise<Workspace> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  if (sharedRoot) {
    await chmod(root, 0o711);
  }
  // A random suffix keeps a re-delivered assignment from colliding with a directory still
  // being removed.
  const dir = await mkdtemp(path.join(root, `${executionId}-`));
  const fetched = new Map<string, FetchedFile>();

  return {
    dir,
    async fetch(name, expected, obtain) {
      const problem = relativePathProblem(name);
      if (problem !== undefined) {
        throw new UnsafePathError(name, problem);
      }
      const target = path.join(dir, name);
      await mkdir(path.dirname(target), { recursive: true });
      await obtain(target);
      fetched.set(name, { digest: expected, stats: await lstat(target) });
    },
    async findOutputs(limit) {
      const scan: OutputScan = { files: [], overLimit: false, unsafeNames: [] };
      for await (const name of regularFiles(dir)) {
        if (relativePathProblem(name) !== undefined) {
          scan.unsafeNames.push(name);
          continue;
        }
        const filePath = path.join(dir, name);
        const before = fetched.get(name);
        if (before !== undefined && sameFile(before.stats, await lstat(filePath))) {
          continue;
        }
        const digest = await digestFile(filePath);
        if (before !== undefined && digest.sha256 === before.digest.sha256 && digest.sizeBytes === before.digest.sizeBytes) {
          continue;
        }
        if (scan.files.length >= limit) {
          // A script may leave millions of files: knowing there is one too many is enough.
          scan.overLimit = true;
          break;
        }
        scan.files.push({ name, path: filePath, ...digest });
      }
      return scan;
    },
    async handOver(uid) {
      for (const name of ["", ...(await listEntries(dir))]) {
        await lchown(path.join(dir, name), uid, uid);
      }
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Every file and directory below `dir`, as relative names; symbolic links are not followed. */
async function listEntries(dir: string, prefix = ""): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const name = path.join(prefix, entry.name);
    names.push(name);
    if (entry.isDirectory()) {
      names.push(...(await listEntries(dir, name)));
    }
  }
  return names;
}

/**
 * Regular files below `dir` as '/'-separated relative names, in name order, found as they are
 * needed. Symbolic links are skipped, never followed: a script could otherwise point one at any
 * file on the runner.
 */
async function* regularFiles(dir: string, prefix = ""): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      yield* regularFiles(path.join(dir, entry.name), name);
    } else if (entry.isFile()) {
      yield name;
    }
  }
}
