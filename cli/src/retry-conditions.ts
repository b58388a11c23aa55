// `rgrid retry --where …`: the conditions, written as a person reads them, turned into the
// RetryFilter the server applies. Each --where holds one or more conditions, all of which must
// hold:
//   status=failed,timed_out   cause=script,timeout,runner_lost,infrastructure   exit=3,75
//   error=connection reset    script=process.py   batch=batch_…   since=2h   until=2025-03-01
//   unresolved
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureCause } from "@rgrid/proto/execution";
import type { RetryFilterSchema } from "@rgrid/proto/execution";
import { isBatchId } from "@rgrid/common/ids";
import { CONDITIONS_HELP } from "./retry-where-terms";
import { parseSince } from "./since";

export type RetryFilterInit = MessageInitShape<typeof RetryFilterSchema>;

export class ConditionError extends Error {
  override name = "ConditionError";
}

const FINISHED_STATUSES: ReadonlyMap<string, ExecutionStatus> = new Map([
  ["completed", ExecutionStatus.COMPLETED],
  ["failed", ExecutionStatus.FAILED],
  ["timed_out", ExecutionStatus.TIMED_OUT],
  ["cancelled", ExecutionStatus.CANCELLED],
]);

const CAUSES: ReadonlyMap<string, FailureCause> = new Map([
  ["script", FailureCause.SCRIPT],
  ["timeout", FailureCause.TIMEOUT],
  ["runner_lost", FailureCause.RUNNER_LOST],
  ["infrastructure", FailureCause.INFRASTRUCTURE],
]);

/**
 * A condition starts at the beginning or after white space, with a name and "=" or the word
 * "unresolved"; so `error=connection reset script=a.py` is two conditions.
 */
const CONDITION_START = /\s+(?=[a-z_-]+=|unresolved(?:\s|$))/;

/** The filter the --where values say, or a ConditionError naming what is wrong. */
export function parseConditions(values: readonly string[], now: Date): RetryFilterInit {
  const filter: RetryFilterInit = {};
  const seen = new Set<string>();
  for (const condition of values.flatMap((value) => value.trim().split(CONDITION_START)).filter((part) => part !== "")) {
    const equals = condition.indexOf("=");
    const name = equals < 0 ? condition : condition.slice(0, equals).replace(/-/g, "_");
    const value = equals < 0 ? "" : condition.slice(equals + 1).trim();
    if (seen.has(name)) {
      throw new ConditionError(`${name} is given twice; list several values in one condition instead (status=failed,timed_out)`);
    }
    seen.add(name);
    applyCondition(filter, name, value, condition, now);
  }
  if (seen.size === 0) {
    throw new ConditionError(`--where needs at least one condition: ${CONDITIONS_HELP}`);
  }
  return filter;
}

function applyCondition(filter: RetryFilterInit, name: string, value: string, condition: string, now: Date): void {
  if (name !== "unresolved" && value === "") {
    throw new ConditionError(`${condition} has no value; for example ${name}=${EXAMPLES[name] ?? "…"}`);
  }
  switch (name) {
    case "status":
      filter.statuses = list(value).map((status) => known(FINISHED_STATUSES, status, "status"));
      return;
    case "cause":
      filter.causes = list(value).map((cause) => known(CAUSES, cause.replace(/-/g, "_"), "cause"));
      return;
    case "exit":
    case "exit_code":
      filter.exitCodes = list(value).map(exitCode);
      return;
    case "error":
      filter.errorContains = value;
      return;
    case "script":
      filter.scriptName = value;
      return;
    case "batch":
      if (!isBatchId(value)) {
        throw new ConditionError(`batch=${value} is not a batch id (batch_ followed by 32 lowercase hex characters)`);
      }
      filter.batchId = value;
      return;
    case "since":
      filter.finishedAfter = timestampFromDate(time(value, now, "since"));
      return;
    case "until":
      filter.finishedBefore = timestampFromDate(time(value, now, "until"));
      return;
    case "unresolved":
      if (value !== "") {
        throw new ConditionError("unresolved takes no value: write just unresolved");
      }
      filter.unresolved = true;
      return;
    default:
      throw new ConditionError(`unknown condition ${JSON.stringify(condition)}; the conditions are: ${CONDITIONS_HELP}`);
  }
}

const EXAMPLES: Record<string, string> = {
  status: "failed,timed_out",
  cause: "runner_lost",
  exit: "3",
  exit_code: "3",
  error: "ConnectionResetError",
  script: "process.py",
  batch: "batch_…",
  since: "2h",
  until: "2025-03-01T12:00",
};

function list(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function known<T>(choices: ReadonlyMap<string, T>, value: string, what: string): T {
  const found = choices.get(value.toLowerCase());
  if (found === undefined) {
    throw new ConditionError(`${what}=${value} is not one of ${[...choices.keys()].join(", ")}`);
  }
  return found;
}

function exitCode(value: string): number {
  const code = Number(value);
  if (!/^\d{1,3}$/.test(value) || code > 255) {
    throw new ConditionError(`exit=${value} is not an exit code (0 to 255)`);
  }
  return code;
}

function time(value: string, now: Date, what: string): Date {
  const parsed = parseSince(value, now);
  if (parsed === undefined) {
    throw new ConditionError(`${what}=${value} is neither a duration back from now (30m, 2h, 7d) nor a time (2025-03-01T14:30)`);
  }
  return parsed;
}
