import { overrideChanges } from "../overrides";
import type { ExecutionOverrides } from "../proto";

/** What this retry changed from the attempt before it, a line per change; nothing when it changed nothing. */
export function OverrideChanges({ overrides }: { overrides: ExecutionOverrides | undefined }) {
  const changes = overrideChanges(overrides);
  if (changes.length === 0) return null;
  return (
    <div className="changes" data-testid="overrides">
      <strong>Changed from the attempt before</strong>
      <ul>
        {changes.map((change) => (
          <li key={change.text} data-part={change.part}>
            {change.text}
          </li>
        ))}
      </ul>
    </div>
  );
}
