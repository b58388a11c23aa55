// One cgroup (v1) per execution: it limits memory and processes, knows every process the script
// started (even those that left its process group), and tells afterwards which limit was hit.
// Execution cgroups live below the cgroup of the runner that started them (runner-cgroup.ts).

import { readFileSync, readdirSync, writeFileSync } from "node:fs";
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

  return {
    procsFiles: dirs.map((dir) => path.join(dir, "cgroup.procs")),
    killAll: () => killMembers(dirs),
    findings() {
      return {
        memoryExceeded: memory !== undefined && memoryLimitHit(memory),
        processLimitReached: pids !== undefined && counterAbove(readIfPresent(path.join(pids, "pids.events")), "max"),
      };
    },
    async remove() {
      for (const dir of dirs) {
        await removeCgroup(dir);
      }
    },
  };
}

/**
 * Kills every process in the cgroup and in the cgroups below it, then removes them all.
 * Resolves with the pids it killed.
 */
export async function removeCgroup(dir: string): Promise<Set<number>> {
  const killed = new Set<number>();
  for (const child of subdirectories(dir)) {
    for (const pid of await removeCgroup(path.join(dir, child))) {
      killed.add(pid);
    }
  }
  // Killed processes leave the cgroup a moment after the signal; rmdir fails until then.
  for (let attempt = 0; ; attempt++) {
    for (const pid of killMembers([dir])) {
      killed.add(pid);
    }
    try {
      await rmdir(dir);
      return killed;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return killed;
      }
      if (attempt >= 500) {
        throw new Error(`could not remove cgroup ${dir}: ${String(error)}`);
      }
      await sleep(10);
    }
  }
}

/** The names of the directories in `dir`: for a cgroup, its child cgroups. */
export function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return [];
    }
    throw error;
  }
}

/** Sends SIGKILL to every process in the cgroups; returns their pids. */
function killMembers(dirs: readonly string[]): number[] {
  const members = new Set<number>();
  for (const dir of dirs) {
    for (const line of readIfPresent(path.join(dir, "cgroup.procs")).split("\n")) {
      if (line !== "") {
        members.add(Number(line));
      }
    }
  }
  for (const pid of members) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return [...members];
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
