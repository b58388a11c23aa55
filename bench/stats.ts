import { readFileSync } from "node:fs";

/** The p-th percentile (0–100) of samples, by nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) {
    return Number.NaN;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** User + system CPU milliseconds of one process (not its children), from Linux's /proc (10 ms ticks). */
export function processCpuMillis(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Peak resident memory of a process in MiB, from Linux's /proc (VmHWM). */
export function peakRssMiB(pid: number | undefined, readStatus: (pid: number) => string): number | undefined {
  if (pid === undefined) {
    return undefined;
  }
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readStatus(pid));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function printTable(rows: Array<[string, string, string]>): void {
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) {
    process.stdout.write(row.map((cell, column) => cell.padEnd(widths[column])).join("  ") + "\n");
  }
}

export const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

/** The target column of a table: the goal and whether the measured value met it. */
export function target(measured: number, comparison: "<=" | ">=", goal: number, unit: string): string {
  const met = comparison === "<=" ? measured <= goal : measured >= goal;
  return `${comparison} ${goal} ${unit}: ${met ? "met" : "MISSED"}`;
}

/** Calls each RPC method has answered, from a service's GET /metrics (`rgrid_rpc_requests_total`, summed over codes). */
export async function rpcCallCounts(serviceUrl: string): Promise<Map<string, number>> {
  const response = await fetch(new URL("/metrics", serviceUrl));
  if (!response.ok) {
    throw new Error(`GET ${serviceUrl}/metrics answered HTTP ${response.status}`);
  }
  const counts = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    const sample = /^rgrid_rpc_requests_total\{(.*)\} (\d+)$/.exec(line);
    const method = sample === null ? undefined : /(?:^|,)method="([^"]+)"/.exec(sample[1]!)?.[1];
    if (method !== undefined) {
      counts.set(method, (counts.get(method) ?? 0) + Number(sample![2]));
    }
  }
  return counts;
}
