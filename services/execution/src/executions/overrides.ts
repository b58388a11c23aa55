import { ErrorInfo_Reason } from "@rgrid/proto";
import type { RetryOverrides } from "@rgrid/proto";
import type { Execution, StoredOverrides } from "../db/entities";
import { PreconditionError } from "../errors";
import { storedFile } from "./convert";

/** The fields of a record that a retry's overrides may change. */
export type Overridable = Pick<
  Execution,
  "env" | "args" | "timeoutSeconds" | "runtime" | "runtimeName" | "scriptName" | "scriptSizeBytes" | "scriptSha256"
>;

/** A retry's overrides applied to the execution it retries. */
export interface AppliedOverrides {
  /** The retry's values that differ from the original's; every other field is carried over. */
  changed: Partial<Overridable>;
  /** What the retry records it changed; null when it changed nothing. */
  record: StoredOverrides | null;
  /** The retry runs a new script version, which its caller uploads: only the inputs are copied. */
  newScript: boolean;
}

const NOTHING_CHANGED: AppliedOverrides = { changed: {}, record: null, newScript: false };

/**
 * What `overrides` changes of `original`, keeping only real changes: a variable set to the value
 * it had, or a script identical to the original's, is none. Overrides that cannot apply to this
 * original (a variable it does not set, a script whose name clashes with an input's) are refused: the
 * caller meant something else, and a retry made anyway would not be what they asked for.
 */
export function applyOverrides(original: Execution, overrides: RetryOverrides | undefined): AppliedOverrides {
  if (overrides === undefined) {
    return NOTHING_CHANGED;
  }
  const changed: Partial<Overridable> = {};
  const record: StoredOverrides = {};

  const env = envChanges(original, overrides);
  if (env.length > 0) {
    record.env = env;
    changed.env = envAfter(original.env, env);
  }
  if (overrides.args !== undefined && !sameList(overrides.args.values, original.args)) {
    record.args = { before: [...original.args], after: [...overrides.args.values] };
    changed.args = [...overrides.args.values];
  }
  if (overrides.timeoutSeconds !== undefined && overrides.timeoutSeconds !== original.timeoutSeconds) {
    record.timeout = { before: original.timeoutSeconds, after: overrides.timeoutSeconds };
    changed.timeoutSeconds = overrides.timeoutSeconds;
  }
  if (overrides.runtime !== undefined && overrides.runtime !== original.runtime) {
    record.runtime = { before: original.runtime, after: overrides.runtime };
    changed.runtime = overrides.runtime;
    changed.runtimeName = overrides.runtime.split(":")[0] as string;
  }
  const script = overrides.script === undefined ? undefined : storedFile(overrides.script);
  const before = { name: original.scriptName, sizeBytes: original.scriptSizeBytes, sha256: original.scriptSha256 };
  const newScript = script !== undefined && (script.name !== before.name || script.sizeBytes !== before.sizeBytes || script.sha256 !== before.sha256);
  if (newScript) {
    const clash = original.inputs.find((input) => sharesAPath(input.name, script.name));
    if (clash !== undefined) {
      throw notApplicable(original, `the new script ${JSON.stringify(script.name)} would clash with its input ${JSON.stringify(clash.name)}`);
    }
    record.script = { before, after: script };
    changed.scriptName = script.name;
    changed.scriptSizeBytes = script.sizeBytes;
    changed.scriptSha256 = script.sha256;
  }
  return { changed, record: Object.keys(record).length === 0 ? null : record, newScript };
}

/** Each variable added, changed or removed, sorted by key. */
function envChanges(original: Execution, overrides: RetryOverrides): NonNullable<StoredOverrides["env"]> {
  const changes: NonNullable<StoredOverrides["env"]> = [];
  for (const key of overrides.unsetEnv) {
    if (!Object.hasOwn(original.env, key)) {
      throw notApplicable(original, `it does not set ${key}, so it cannot be unset`);
    }
    changes.push({ key, before: original.env[key] as string, after: null });
  }
  for (const [key, value] of Object.entries(overrides.setEnv)) {
    const before = Object.hasOwn(original.env, key) ? (original.env[key] as string) : null;
    if (before !== value) {
      changes.push({ key, before, after: value });
    }
  }
  return changes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function envAfter(env: Record<string, string>, changes: NonNullable<StoredOverrides["env"]>): Record<string, string> {
  const after = { ...env };
  for (const change of changes) {
    if (change.after === null) {
      delete after[change.key];
    } else {
      after[change.key] = change.after;
    }
  }
  return after;
}

/** The script and inputs share one working directory: "data" cannot be a file and the directory of "data/in.json". */
function sharesAPath(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

function notApplicable(original: Execution, why: string): PreconditionError {
  return new PreconditionError(`cannot retry ${original.id} with these overrides: ${why}; nothing was created`, {
    reason: ErrorInfo_Reason.OVERRIDE_NOT_APPLICABLE,
    executionId: original.id,
  });
}
