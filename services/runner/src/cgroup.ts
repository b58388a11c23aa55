// One cgroup (v1) per execution: it limits memory and processes, knows every process the script
// started (even those that left its process group), and tells afterwards which limit was hit.

import { readFileSync, writeFileSync } from "node:fs";
import { mkdir, rmdir } from "node:fs/promises";
import * as path from "node:path";
import type { ResourceLimits } from "./config";
import { sleep } from "./retry";

export interface LimitFindings {
  memoryExceeded: boolean;
  processLimitReached: boolean;
}

export interface ExecutionCgroup {
  /** The cgroup.procs files the sandbox wrapper writes its own pid into before it execs. */
  readonly procsFiles: string[];
  /** Sends SIGKILL to every process in the cgroup. */
  killAll(): void;
  /** Which limits the run ran into; read before remove(). */
  findings(): LimitFindings;
  /** Kills whatever is left and removes the cgroup. */
  remove(): Promise<void>;
}

export interface CgroupParents {
  memory?: string;
  pids?: string;
}

export async function createExecutionCgroup(
  parents: CgroupParents,
  name: string,
  limits: ResourceLimits,
): Promise<ExecutionCgroup | undefined> {
  const memory = parents.memory === undefined ? undefined : path.join(parents.memory, name);
  const pids = parents.pids === undefined ? undefined : path.join(parents.pids, name);
  const dirs = [memory, pids].filter((dir): dir is string => dir !== undefined);
  if (dirs.length === 0) {
    return undefined;
  }
  try {
    for (const dir of dirs) {
      await mkdir(dir);
    }
    if (memory !== undefined) {
      const bytes = String(limits.memoryBytes);
      writeFileSync(path.join(memory, "memory.limit_in_bytes"), bytes);
      // Without a memory+swap limit, a script over its limit would be swapped out instead of stopped.
      writeIfPresent(path.join(memory, "memory.memsw.limit_in_bytes"), bytes);
    }
    if (pids !== undefined) {
      writeFileSync(path.join(pids, "pids.max"), String(limits.maxProcesses));
    }
  } catch (error) {
    await Promise.all(dirs.map((dir) => rmdir(dir).catch(() => undefined)));
    throw error;
  }

  const members = (): number[] => {
    const pidsFound = new Set<number>();
    for (const dir of dirs) {
      for (const line of readIfPresent(path.join(dir, "cgroup.procs")).split("\n")) {
        if (line !== "") {
          pidsFound.add(Number(line));
        }
      }
    }
    return [...pidsFound];
  };

  const killAll = (): void => {
    for (const pid of members()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };

  return {
    procsFiles: dirs.map((dir) => path.join(dir, "cgroup.procs")),
    killAll,
    findings() {
      return {
        memoryExceeded: memory !== undefined && memoryLimitHit(memory),
        processLimitReached: pids !== undefined && counterAbove(readIfPresent(path.join(pids, "pids.events")), "max"),
      };
    },
    async remove() {
      // Killed processes leave the cgroup a moment after the signal; rmdir fails until then.
      for (const dir of dirs) {
        for (let attempt = 0; ; attempt++) {
          killAll();
          try {
            await rmdir(dir);
            break;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOENT") {
              break;
            }
            if (attempt >= 500) {
              throw new Error(`could not remove cgroup ${dir}: ${String(error)}`);
            }
            await sleep(10);
          }
        }
      }
    },
  };
}

/** The OOM killer ran in the cgroup (the count is there since Linux 4.13; failcnt before). */
function memoryLimitHit(dir: string): boolean {
  const control = readIfPresent(path.join(dir, "memory.oom_control"));
  if (/^oom_kill \d+$/m.test(control)) {
    return counterAbove(control, "oom_kill");
  }
  return Number(readIfPresent(path.join(dir, "memory.failcnt")) || "0") > 0;
}

function counterAbove(text: string, key: string): boolean {
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return match !== null && Number(match[1]) > 0;
}

function readIfPresent(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function writeIfPresent(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw error;
    }
  }
}
