// Finding a test's own processes on this machine by a word in their command lines: sandboxed
// scripts have pids of their own namespace, so their host pids are found through /proc.
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";

/** A word nobody else's command line holds, to find a process by. */
export function uniqueMarker(label: string): string {
  return `rgrid-${label}-${randomBytes(6).toString("hex")}`;
}

/** Host pids of the live (not zombie) processes whose command line contains `marker`. */
export function hostProcessesWith(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    try {
      const commandLine = readFileSync(`/proc/${name}/cmdline`, "latin1");
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      if (commandLine.includes(marker) && !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) {
        found.push(Number(name));
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
