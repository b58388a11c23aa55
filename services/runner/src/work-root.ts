// The work root holds every script's working directory and is where the runner, often as root,
// creates, chowns and deletes them. Anyone else able to swap it (a symbolic link, a writable
// directory or one owned by another user) could point those operations at any file of the host.

import { lstatSync, mkdirSync } from "node:fs";

export class UnsafeWorkRootError extends Error {
  constructor(workDir: string, problem: string) {
    super(`RGRID_RUNNER_WORK_DIR ${workDir} ${problem}; the runner will not use it`);
    this.name = "UnsafeWorkRootError";
  }
}

/** Creates the work root if it is missing; throws UnsafeWorkRootError when it cannot be trusted. */
export function checkWorkRoot(workDir: string, isRoot: boolean): void {
  // 0711, parents included: scripts running as other users must pass through to their own
  // working directories, but may not list the others.
  mkdirSync(workDir, { recursive: true, mode: 0o711 });
  const stats = lstatSync(workDir);
  if (stats.isSymbolicLink()) {
    throw new UnsafeWorkRootError(workDir, "is a symbolic link");
  }
  if (!stats.isDirectory()) {
    throw new UnsafeWorkRootError(workDir, "is not a directory");
  }
  if (isRoot && stats.uid !== 0) {
    throw new UnsafeWorkRootError(workDir, `is owned by uid ${stats.uid}, not root (chown root ${workDir})`);
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new UnsafeWorkRootError(workDir, `can be written by others (mode ${(stats.mode & 0o777).toString(8)}; chmod go-w ${workDir})`);
  }
}
