import { Link } from "react-router";
import { actionLabel, actionName, actorName, isId, outcomeExecutionId } from "../audit";
import { formatFullTime, formatShortTime, isoTime, shortId, toMs } from "../format";
import type { AuditEntry } from "../proto";

/** One row per audit entry: when, what, on which execution, who asked, why, and what came of it. */
export function AuditTable({ entries, testId = "audit-table" }: { entries: readonly AuditEntry[]; testId?: string }) {
  const now = Date.now();
  return (
    <div className="table-scroll">
      <table className="data-table audit-table" data-testid={testId}>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Action</th>
            <th scope="col">Execution</th>
            <th scope="col">Who</th>
            <th scope="col">Reason</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <AuditRow key={entry.id} entry={entry} now={now} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AuditRow({ entry, now }: { entry: AuditEntry; now: number }) {
  const created = toMs(entry.createdAt);
  return (
    <tr data-testid="audit-row" data-entry-id={entry.id} data-action={actionName(entry.action)} data-execution-id={entry.executionId}>
      <td className="time-cell">
        <time dateTime={isoTime(created)} title={formatFullTime(created)}>
          {formatShortTime(created, now)}
        </time>
      </td>
      <td className="action-cell">{actionLabel(entry.action)}</td>
      <td className="mono">
        {entry.executionId ? (
          <Link to={`/executions/${entry.executionId}`}>{entry.executionId}</Link>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="mono" title={`${actorName(entry)}${entry.requestId ? ` · request ${entry.requestId}` : ""}`}>
        {entry.actor ? shortId(entry.actor) : <span className="muted">{actorName(entry)}</span>}
      </td>
      <td className="reason-cell" title={entry.reason || undefined}>
        {entry.reason || <span className="muted">—</span>}
      </td>
      <td>
        <Outcome outcome={entry.outcome} />
      </td>
    </tr>
  );
}

/** A retry's new execution, linked; an id (a sign-in's session) shortened; a word ("cancelled") as it is. */
function Outcome({ outcome }: { outcome: string }) {
  const executionId = outcomeExecutionId(outcome);
  if (executionId) {
    return (
      <Link className="mono" to={`/executions/${executionId}`} title={executionId}>
        → {shortId(executionId)}
      </Link>
    );
  }
  if (!outcome) return <span className="muted">—</span>;
  return isId(outcome) ? (
    <span className="mono" title={outcome}>
      {shortId(outcome)}
    </span>
  ) : (
    <span>{outcome}</span>
  );
}
