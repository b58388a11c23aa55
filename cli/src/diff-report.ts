// What `rgrid diff` prints: the readable report (only what differs, grouped, with what is the same
// summarized) and the JSON form. Both are made from the server's DiffExecutionsResponse alone.
import { durationMs } from "@bufbuild/protobuf/wkt";
import { timeoutText } from "@rgrid/common/override-changes";
import { DiffChange, LogDiff_Result } from "@rgrid/proto/execution";
import type { DiffExecutionsResponse, DiffSide, EnvDiff, FileInfo, InputDiff, LogEntry } from "@rgrid/proto/execution";
import { failureKindName, formatBytes, formatDuration, logEntryView, shorten, statusName } from "./present";
import type { FileView } from "./present";

const CHANGE_NAMES: ReadonlyMap<DiffChange, string> = new Map([
  [DiffChange.SAME, "same"],
  [DiffChange.CHANGED, "changed"],
  [DiffChange.ADDED, "added"],
  [DiffChange.REMOVED, "removed"],
]);

const LOG_RESULT_NAMES: ReadonlyMap<LogDiff_Result, string> = new Map([
  [LogDiff_Result.NOT_COMPARED, "not_compared"],
  [LogDiff_Result.SAME, "same"],
  [LogDiff_Result.DIVERGED, "diverged"],
]);

/** A change the server added after this CLI was built still prints as something readable. */
function changeName(change: DiffChange): string {
  return CHANGE_NAMES.get(change) ?? `change_${change}`;
}

/** Digests are told apart by their first characters; the JSON form keeps them whole. */
const SHORT_SHA256 = 12;
/** Log lines and values are shown on one line each, cut to this many characters. */
const SHOWN_CHARACTERS = 200;

// ---- The readable report ----

/**
 * The report: who is compared, then each group that differs with its details, in a fixed order,
 * and one closing line naming the groups that are the same. Collections (inputs, env) count
 * their same items on the group's line and list only the others.
 */
export function diffLines(diff: DiffExecutionsResponse): string[] {
  const a = diff.a;
  const b = diff.b;
  if (a === undefined || b === undefined) {
    throw new Error("the server's answer to the diff did not describe both executions");
  }
  const lines = [`a: ${sideTitle(a)}`, `b: ${sideTitle(b)}`, ""];
  const same: string[] = [];
  const group = (name: string, change: DiffChange, details: () => string[]): void => {
    if (change === DiffChange.SAME) {
      same.push(name);
    } else {
      lines.push(...details());
    }
  };

  group("Script", diff.script, () => ["Script: changed", `  a: ${fileText(a.script)}`, `  b: ${fileText(b.script)}`]);
  lines.push(...collectionLines("Inputs", diff.inputs, inputLine));
  group("Args", diff.args, () => ["Args: changed", `  a: ${argsText(a.args)}`, `  b: ${argsText(b.args)}`]);
  lines.push(...collectionLines("Env", diff.env, envLine));
  group("Runtime", diff.runtime, () => [`Runtime: ${a.runtime} -> ${b.runtime}`]);
  group("Timeout", diff.timeout, () => [`Timeout: ${timeoutText(a.timeoutSeconds)} -> ${timeoutText(b.timeoutSeconds)}`]);
  group("Network", diff.network, () => [`Network: ${onOff(a.network)} -> ${onOff(b.network)}`]);
  group("Runner", diff.runner, () => [`Runner: ${a.runnerId || "(none)"} -> ${b.runnerId || "(none)"}`]);
  group("Sandbox", diff.sandboxWarnings, () => [
    "Sandbox: changed",
    `  a: ${listText(a.sandboxWarnings)}`,
    `  b: ${listText(b.sandboxWarnings)}`,
  ]);
  group("Outcome", diff.outcome, () => ["Outcome: changed", `  a: ${outcomeText(a)}`, `  b: ${outcomeText(b)}`]);
  const logs = diff.logs;
  if (logs?.result === LogDiff_Result.SAME) {
    same.push("Logs");
  } else if (logs?.result === LogDiff_Result.DIVERGED) {
    lines.push(`Logs: differ from line ${logs.line}`, `  a: ${logLineText(logs.a)}`, `  b: ${logLineText(logs.b)}`);
  } else {
    lines.push(`Logs: not compared (${logs?.reason || "the server did not compare them"})`);
  }
  if (same.length > 0) {
    lines.push(`Same: ${same.join(", ")}`);
  }
  return lines;
}

function sideTitle(side: DiffSide): string {
  const lineage = side.rootId !== "" && side.rootId !== side.executionId ? ` of ${side.rootId}` : "";
  return `${side.executionId} (attempt ${side.attempt}${lineage}, ${statusName(side.status)})`;
}

/** "Inputs: 1 changed, 1 added, 3 same" and a line per item that is not the same. */
function collectionLines<T extends { change: DiffChange }>(name: string, items: readonly T[], itemLine: (item: T) => string): string[] {
  if (items.length === 0) {
    return [];
  }
  const counts = new Map<string, number>();
  for (const item of items) {
    counts.set(changeName(item.change), (counts.get(changeName(item.change)) ?? 0) + 1);
  }
  // The differences first, in the order a reader looks for them; "same" last.
  const order = ["changed", "added", "removed", "same"];
  const summary = [...counts]
    .sort(([x], [y]) => rank(order, x) - rank(order, y))
    .map(([change, count]) => `${count} ${change}`)
    .join(", ");
  return [`${name}: ${summary}`, ...items.filter((item) => item.change !== DiffChange.SAME).map((item) => `  ${itemLine(item)}`)];
}

function rank(order: readonly string[], name: string): number {
  const index = order.indexOf(name);
  return index === -1 ? order.length : index;
}

function inputLine(input: InputDiff): string {
  const change = changeName(input.change).padEnd(8);
  if (input.change === DiffChange.CHANGED) {
    return `${change} ${input.name}: ${fileFacts(input.a)} -> ${fileFacts(input.b)}`;
  }
  return `${change} ${input.name}: ${fileFacts(input.a ?? input.b)}`;
}

/** Values only when the server sent them (--show-values); otherwise the key and how it changed. */
function envLine(entry: EnvDiff): string {
  const change = changeName(entry.change).padEnd(8);
  if (entry.valueA === undefined && entry.valueB === undefined) {
    return `${change} ${entry.key}`;
  }
  const value = (text: string | undefined) => (text === undefined ? "(unset)" : JSON.stringify(cut(text)));
  if (entry.change === DiffChange.ADDED) {
    return `${change} ${entry.key}=${value(entry.valueB)}`;
  }
  if (entry.change === DiffChange.REMOVED) {
    return `${change} ${entry.key}=${value(entry.valueA)}`;
  }
  return `${change} ${entry.key}: ${value(entry.valueA)} -> ${value(entry.valueB)}`;
}

function fileText(file: FileInfo | undefined): string {
  return file === undefined ? "(none)" : `${file.name} (${fileFacts(file)})`;
}

function fileFacts(file: FileInfo | undefined): string {
  return file === undefined ? "(none)" : `${formatBytes(Number(file.sizeBytes))}, sha256 ${file.sha256.slice(0, SHORT_SHA256)}`;
}

/** Arguments as a shell would need them typed, so spaces and empty ones stay visible. */
function argsText(args: readonly string[]): string {
  if (args.length === 0) {
    return "(none)";
  }
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(" ");
}

function onOff(enabled: boolean): string {
  return enabled ? "on" : "off";
}

function listText(items: readonly string[]): string {
  return items.length === 0 ? "(none)" : items.join("; ");
}

/** "failed, exit code 1, script failure, 2.3s: UpstreamUnavailable: ..." */
function outcomeText(side: DiffSide): string {
  const parts = [statusName(side.status)];
  if (side.exitCode !== undefined) {
    parts.push(`exit code ${side.exitCode}`);
  }
  const failure = failureKindName(side.failureKind);
  if (failure !== undefined) {
    parts.push(`${failure.replace(/_/g, " ")} failure`);
  }
  if (side.duration !== undefined) {
    parts.push(formatDuration(durationMs(side.duration)));
  }
  const error = side.errorMessage === "" ? "" : `: ${shorten(side.errorMessage)}`;
  return `${parts.join(", ")}${error}`;
}

function logLineText(entry: LogEntry | undefined): string {
  if (entry === undefined) {
    return "(end of log)";
  }
  const view = logEntryView(entry);
  return `[${view.stream}] ${cut(view.line)}`;
}

function cut(text: string): string {
  return text.length <= SHOWN_CHARACTERS ? text : `${text.slice(0, SHOWN_CHARACTERS - 3)}...`;
}

// ---- The JSON form ----

/**
 * The plain JSON form of a diff: snake_case keys as in the proto, changes and results as lower
 * case names, absent facts as null. Env values appear (value_a, value_b) only when they were
 * asked for, so scripts can tell "not shown" from "unset".
 */
export function diffView(diff: DiffExecutionsResponse, showValues: boolean) {
  return {
    a: diff.a === undefined ? null : sideView(diff.a),
    b: diff.b === undefined ? null : sideView(diff.b),
    script: changeName(diff.script),
    inputs: diff.inputs.map((input) => ({
      name: input.name,
      change: changeName(input.change),
      a: input.a === undefined ? null : fileView(input.a),
      b: input.b === undefined ? null : fileView(input.b),
    })),
    args: changeName(diff.args),
    env: diff.env.map((entry) => ({
      key: entry.key,
      change: changeName(entry.change),
      ...(showValues ? { value_a: entry.valueA ?? null, value_b: entry.valueB ?? null } : {}),
    })),
    runtime: changeName(diff.runtime),
    timeout: changeName(diff.timeout),
    network: changeName(diff.network),
    runner: changeName(diff.runner),
    sandbox_warnings: changeName(diff.sandboxWarnings),
    outcome: changeName(diff.outcome),
    logs: {
      result: (diff.logs && LOG_RESULT_NAMES.get(diff.logs.result)) ?? "unspecified",
      reason: diff.logs?.reason || null,
      line: diff.logs?.result === LogDiff_Result.DIVERGED ? Number(diff.logs.line) : null,
      a: diff.logs?.a === undefined ? null : logEntryView(diff.logs.a),
      b: diff.logs?.b === undefined ? null : logEntryView(diff.logs.b),
    },
  };
}

export type DiffView = ReturnType<typeof diffView>;

function sideView(side: DiffSide) {
  return {
    execution_id: side.executionId,
    root_id: side.rootId || null,
    attempt: side.attempt,
    script: side.script === undefined ? null : fileView(side.script),
    args: [...side.args],
    runtime: side.runtime,
    timeout_seconds: side.timeoutSeconds,
    network: side.network,
    runner_id: side.runnerId || null,
    sandbox_warnings: [...side.sandboxWarnings],
    status: statusName(side.status),
    exit_code: side.exitCode ?? null,
    failure_kind: failureKindName(side.failureKind) ?? null,
    error_message: side.errorMessage || null,
    duration_ms: side.duration === undefined ? null : durationMs(side.duration),
  };
}

function fileView(file: FileInfo): FileView {
  return { name: file.name, size_bytes: Number(file.sizeBytes), sha256: file.sha256 };
}
