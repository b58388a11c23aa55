import { Link } from "react-router";
import type { Execution } from "../proto";
import { formatDuration, formatFullTime, formatShortTime, isoTime, runDurationMs, shortId, statusName, toMs } from "../format";
import { StatusBadge } from "./status-badge";

/** One row per execution; the hooks (data-testid, data-execution-id, data-status) are a contract. */
export function ExecutionTable({ executions, showBatch = true }: { executions: readonly Execution[]; showBatch?: boolean }) {
  const now = Date.now();
  return (
    <table className="data-table executions-table" data-testid="executions-table">
      <thead>
        <tr>
          <th scope="col">Execution</th>
          <th scope="col">Status</th>
          <th scope="col">Script</th>
          <th scope="col" className="numeric">
            Attempt
          </th>
          <th scope="col">Created</th>
          <th scope="col" className="numeric">
            Duration
          </th>
          <th scope="col" className="numeric">
            Exit code
          </th>
          {showBatch && <th scope="col">Batch</th>}
        </tr>
      </thead>
      <tbody>
        {executions.map((execution) => (
          <ExecutionRow key={execution.id} execution={execution} showBatch={showBatch} now={now} />
        ))}
      </tbody>
    </table>
  );
}

function ExecutionRow({ execution, showBatch, now }: { execution: Execution; showBatch: boolean; now: number }) {
  const created = toMs(execution.createdAt);
  const duration = runDurationMs(execution, now);
  return (
    <tr data-testid="execution-row" data-execution-id={execution.id} data-status={statusName(execution.status)}>
      <td className="mono">
        <Link to={`/executions/${execution.id}`}>{execution.id}</Link>
      </td>
      <td>
        <StatusBadge status={execution.status} />
      </td>
      <td className="script-cell" title={execution.script?.name}>
        {execution.script?.name ?? "—"}
      </td>
      <td className="numeric">{execution.attempt || 1}</td>
      <td>
        <time dateTime={isoTime(created)} title={formatFullTime(created)}>
          {formatShortTime(created, now)}
        </time>
      </td>
      <td className="numeric">{duration === undefined ? "—" : formatDuration(duration)}</td>
      <td className="numeric mono">{execution.exitCode ?? "—"}</td>
      {showBatch && (
        <td className="mono">
          {execution.batchId ? (
            <Link to={`/batches/${execution.batchId}`} title={execution.batchId}>
              {shortId(execution.batchId)}
            </Link>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
      )}
    </tr>
  );
}
