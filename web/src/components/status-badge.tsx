import type { ExecutionStatus } from "../proto";
import { statusName } from "../format";

export function StatusBadge({ status, testId }: { status: ExecutionStatus; testId?: string }) {
  const name = statusName(status);
  return (
    <span className={`badge badge-${name}`} data-testid={testId}>
      {name}
    </span>
  );
}
