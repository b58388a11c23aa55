// What a retry changed from the execution it retried (Execution.overrides), in words, said the
// same way by the CLI (`rgrid status`, `rgrid retry`) and the console: "env UPSTREAM_URL changed",
// "timeout default → 120s", "script replaced (sha256 1f2e… → 9a0b…)". Env values may be secrets,
// so they are in the words only when asked for (`--show-values`; the console never asks). Types
// only from the protos, so the console's bundle takes this file as it is.
import type { EnvOverride, ExecutionOverrides, FileInfo } from "@rgrid/proto";

/** A part of an execution that a retry can change. */
export type OverriddenPart = "env" | "args" | "timeout" | "runtime" | "script";

export interface OverrideChange {
  part: OverriddenPart;
  text: string;
}

/** Each change in words: env keys in the server's (sorted) order, then args, timeout, runtime, script. */
export function overrideChanges(overrides: ExecutionOverrides | undefined, options: { showValues?: boolean } = {}): OverrideChange[] {
  if (overrides === undefined) {
    return [];
  }
  const changes: OverrideChange[] = overrides.env.map((change) => ({ part: "env", text: envChange(change, options.showValues === true) }));
  if (overrides.args) {
    changes.push({ part: "args", text: `args ${JSON.stringify(overrides.args.before)} → ${JSON.stringify(overrides.args.after)}` });
  }
  if (overrides.timeout) {
    changes.push({ part: "timeout", text: `timeout ${timeoutText(overrides.timeout.before)} → ${timeoutText(overrides.timeout.after)}` });
  }
  if (overrides.runtime) {
    changes.push({ part: "runtime", text: `runtime ${overrides.runtime.before} → ${overrides.runtime.after}` });
  }
  if (overrides.script?.before && overrides.script.after) {
    changes.push({ part: "script", text: scriptChange(overrides.script.before, overrides.script.after) });
  }
  return changes;
}

/** A timeout in these words; zero is the service default. */
export function timeoutText(seconds: number): string {
  return seconds === 0 ? "default" : `${seconds}s`;
}

function envChange({ key, before, after }: EnvOverride, showValues: boolean): string {
  if (before === undefined) {
    return showValues ? `env ${key} added (${JSON.stringify(after)})` : `env ${key} added`;
  }
  if (after === undefined) {
    return showValues ? `env ${key} removed (was ${JSON.stringify(before)})` : `env ${key} removed`;
  }
  return showValues ? `env ${key} changed (${JSON.stringify(before)} → ${JSON.stringify(after)})` : `env ${key} changed`;
}

/** Digests are told apart by their first characters. */
function scriptChange(before: FileInfo, after: FileInfo): string {
  const hashes = `sha256 ${before.sha256.slice(0, 4)}… → ${after.sha256.slice(0, 4)}…`;
  return before.name === after.name ? `script replaced (${hashes})` : `script replaced (${before.name} → ${after.name}, ${hashes})`;
}
