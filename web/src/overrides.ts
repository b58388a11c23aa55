// What a retry changed from the attempt before it (Execution.overrides), in the words the CLI uses
// (shared: packages/common/src/override-changes.ts). The console never asks for env values: the
// page shows env keys only.
import { overrideChanges } from "../../packages/common/src/override-changes";
import type { OverriddenPart } from "../../packages/common/src/override-changes";
import type { ExecutionOverrides } from "./proto";

export { overrideChanges };

/** The parts changed, each once, for a short tag ("env, script"). */
export function overriddenParts(overrides: ExecutionOverrides | undefined): OverriddenPart[] {
  return [...new Set(overrideChanges(overrides).map((change) => change.part))];
}
