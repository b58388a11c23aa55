// What a retry changed from the execution it retried, in one line, as `rgrid status` and `rgrid
// retry` print it: "env UPSTREAM_URL changed, script replaced (sha256 1f2e… → 9a0b…)". The words
// are shared with the console (@rgrid/common/override-changes); the JSON form is executionView's
// (present.ts).
import { overrideChanges } from "@rgrid/common/override-changes";
import type { ExecutionOverrides } from "@rgrid/proto/execution";

/** The changes in one line, or undefined when there are none; env values only with `showValues`. */
export function overridesSummary(overrides: ExecutionOverrides | undefined, showValues: boolean): string | undefined {
  const changes = overrideChanges(overrides, { showValues });
  return changes.length === 0 ? undefined : changes.map((change) => change.text).join(", ");
}
