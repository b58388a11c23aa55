// Each runner process keeps the cgroups of its executions below a cgroup of its own, named after
// the process (pid namespace, pid, start time). A runner killed mid-run cannot clean up, so the
// next runner to start does it: it kills the scripts the dead runner left running and removes its
// cgroups. The start time in the name keeps a reused pid from passing for the dead runner.

import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import type { Logger } from "@rgrid/common";
import type { CgroupParents } from "./cgroup";
import { removeCgroup, subdirectories } from "./cgroup";

export interface ProcessIdentity {
  pidNamespace: string;
  pid: number;
  /** Clock ticks after boot (field 22 of /proc/<pid>/stat). */
  startTime: string;
}

export interface RunnerCgroup {
  /** Where this runner creates its execution cgroups, per controller. */
  readonly parents: CgroupParents;
  /** Kills whatever is left in it and removes it. */
  remove(): Promise<void>;
}

const RUNNER_CGROUP = /^runner-(\d+)-(\d+)-(\d+)-[0-9a-f]+$/;

/**
 * Cleans up after runners that are gone, then creates this process's cgroup in each area (the
 * rgrid directory of a controller, shared by every runner of the machine).
 */
export async function openRunnerCgroup(areas: CgroupParents, logger: Logger): Promise<RunnerCgroup> {
  const self = identify(process.pid);
  if (self === undefined) {
    throw new Error("cannot read /proc/self: the runner cannot name its cgroup");
  }
  await sweepAbandonedCgroups(areas, self.pidNamespace, logger);
  return createRunnerCgroup(areas, self);
}

export async function createRunnerCgroup(areas: CgroupParents, owner: ProcessIdentity): Promise<RunnerCgroup> {
  const name = `runner-${owner.pidNamespace}-${owner.pid}-${owner.startTime}-${randomBytes(4).toString("hex")}`;
  const parents: CgroupParents = {
    memory: areas.memory === undefined ? undefined : path.join(areas.memory, name),
    pids: areas.pids === undefined ? undefined : path.join(areas.pids, name),
  };
  const dirs = Object.values(parents).filter((dir): dir is string => dir !== undefined);
  for (const dir of dirs) {
    await mkdir(dir);
  }
  return {
    parents,
    async remove() {
      for (const dir of dirs) {
        await removeCgroup(dir);
      }
    },
  };
}

/**
 * The process `pid` is now; undefined when there is no such process or it is a zombie (dead,
 * only not yet collected by its parent).
 */
export function identify(pid: number): ProcessIdentity | undefined {
  try {
    const namespace = /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/pid`))?.[1];
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses; the fields after it do not.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const startTime = fields[19];
    if (namespace === undefined || startTime === undefined || fields[0] === "Z") {
      return undefined;
    }
    return { pidNamespace: namespace, pid, startTime };
  } catch {
    return undefined;
  }
}

async function sweepAbandonedCgroups(areas: CgroupParents, ownNamespace: string, logger: Logger): Promise<void> {
  for (const area of [areas.memory, areas.pids]) {
    if (area === undefined) {
      continue;
    }
    for (const name of subdirectories(area)) {
      const dir = path.join(area, name);
      const owner = parseRunnerCgroupName(name);
      // The pids of another pid namespace are not visible here, so its runners cannot be judged.
      if (owner === undefined || owner.pidNamespace !== ownNamespace || identify(owner.pid)?.startTime === owner.startTime) {
        continue;
      }
      try {
        const killed = await removeCgroup(dir);
        logger.warn(`removed the cgroup of a runner that is gone: ${dir}`, { killedProcesses: killed.size });
      } catch (error) {
        logger.warn(`could not clean up the cgroup of a runner that is gone: ${dir}`, { error: String(error) });
      }
    }
  }
}

function parseRunnerCgroupName(name: string): ProcessIdentity | undefined {
  const match = RUNNER_CGROUP.exec(name);
  if (match === null) {
    return undefined;
  }
  return { pidNamespace: match[1] ?? "", pid: Number(match[2]), startTime: match[3] ?? "" };
}
