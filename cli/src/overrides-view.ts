// What a retry changed from the execution it retried (Execution.overrides), as `rgrid status` and
// `rgrid retry` print it: "env UPSTREAM_URL changed, script replaced (sha256 1f2e… → 9a0b…)".
// Env values may be secrets, so they are shown only when asked for (--show-values). The JSON form
// is executionView's (present.ts).
import type { ExecutionOverrides, FileInfo } from "@rgrid/proto/execution";

/** The changes in one line, or undefined when there are none. */
export function overridesSummary(overrides: ExecutionOverrides | undefined, showValues: boolean): string | undefined {
  if (overrides === undefined) {
    return undefined;
  }
  const parts: string[] = [];
  for (const change of overrides.env) {
    parts.push(envChange(change.key, change.before, change.after, showValues));
  }
  if (overrides.args) {
    parts.push(`args ${JSON.stringify(overrides.args.before)} → ${JSON.stringify(overrides.args.after)}`);
  }
  if (overrides.timeout) {
    parts.push(`timeout ${timeoutText(overrides.timeout.before)} → ${timeoutText(overrides.timeout.after)}`);
  }
  if (overrides.runtime) {
    parts.push(`runtime ${overrides.runtime.before} → ${overrides.runtime.after}`);
  }
  if (overrides.script?.before && overrides.script.after) {
    parts.push(scriptChange(overrides.script.before, overrides.script.after));
  }
  return parts.length === 0 ? undefined : parts.join(", ");
}

function envChange(key: string, before: string | undefined, after: string | undefined, showValues: boolean): string {
  if (before === undefined) {
    return showValues ? `env ${key} added (${JSON.stringify(after)})` : `env ${key} added`;
  }
  if (after === undefined) {
    return showValues ? `env ${key} removed (was ${JSON.stringify(before)})` : `env ${key} removed`;
  }
  return showValues ? `env ${key} changed (${JSON.stringify(before)} → ${JSON.stringify(after)})` : `env ${key} changed`;
}

function scriptChange(before: FileInfo, after: FileInfo): string {
  const hashes = `sha256 ${before.sha256.slice(0, 4)}… → ${after.sha256.slice(0, 4)}…`;
  return before.name === after.name ? `script replaced (${hashes})` : `script replaced (${before.name} → ${after.name}, ${hashes})`;
}

function timeoutText(seconds: number): string {
  return seconds === 0 ? "default" : `${seconds}s`;
}
