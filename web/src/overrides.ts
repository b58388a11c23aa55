// What a retry changed from the attempt before it (Execution.overrides), in the words `rgrid
// status` uses: "env UPSTREAM_URL changed", "timeout default → 120s". Env values may be secrets
// and the console never shows them (the page shows env keys only), so no wording here takes one.
import { timeoutText } from "./format";
import type { EnvOverride, ExecutionOverrides, FileInfo } from "./proto";

/** A part of an execution that a retry can change, as the lineage tags name it. */
export type OverriddenPart = "env" | "args" | "timeout" | "runtime" | "script";

export type OverrideChange = { part: OverriddenPart; text: string };

/** Each change in words, in the CLI's order (env keys sorted as the server sends them); none without overrides. */
export function overrideChanges(overrides: ExecutionOverrides | undefined): OverrideChange[] {
  if (!overrides) return [];
  const changes: OverrideChange[] = overrides.env.map((change) => ({ part: "env", text: envChange(change) }));
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

/** The parts changed, each once, for a short tag ("env, script"). */
export function overriddenParts(overrides: ExecutionOverrides | undefined): OverriddenPart[] {
  return [...new Set(overrideChanges(overrides).map((change) => change.part))];
}

function envChange({ key, before, after }: EnvOverride): string {
  if (before === undefined) return `env ${key} added`;
  if (after === undefined) return `env ${key} removed`;
  return `env ${key} changed`;
}

/** Digests are told apart by their first characters, as in the CLI. */
function scriptChange(before: FileInfo, after: FileInfo): string {
  const hashes = `sha256 ${before.sha256.slice(0, 4)}… → ${after.sha256.slice(0, 4)}…`;
  return before.name === after.name ? `script replaced (${hashes})` : `script replaced (${before.name} → ${after.name}, ${hashes})`;
}
