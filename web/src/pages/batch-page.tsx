import { useQuery } from "@connectrpc/connect-query";
import { keepPreviousData } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { BatchRetryDialog } from "../components/batch-retry-dialog";
import { useDocumentTitle } from "../components/document-title";
import { ErrorMessage } from "../components/errors";
import { ExecutionTable } from "../components/execution-table";
import { Pager, usePageToken } from "../components/pager";
import { StatusBadge } from "../components/status-badge";
import { formatFullTime, statusName, toMs } from "../format";
import { ExecutionService, ExecutionStatus } from "../proto";
import { PAGE_SIZE, refreshEvery } from "../queries";

/** `/batches/:id`: how many of the batch's executions are in each status, and its members. */
export function BatchPage() {
  const { id = "" } = useParams();
  useDocumentTitle(id);
  const paging = usePageToken();
  const [retrying, setRetrying] = useState(false);
  const batch = useQuery(
    ExecutionService.method.getBatch,
    { batchId: id },
    { refetchInterval: (query) => refreshEvery(query.state.data?.counts.map((count) => count.status) ?? []) },
  );
  const members = useQuery(
    ExecutionService.method.listExecutions,
    { batchId: id, pageSize: PAGE_SIZE, pageToken: paging.after },
    {
      refetchInterval: (query) => refreshEvery(query.state.data?.executions.map((execution) => execution.status) ?? []),
      placeholderData: keepPreviousData,
    },
  );

  const counts = batch.data?.counts ?? [];
  const failedCount = batch.data
    ? counts
        .filter((count) => count.status === ExecutionStatus.FAILED || count.status === ExecutionStatus.TIMED_OUT)
        .reduce((sum, count) => sum + count.count, 0)
    : undefined;
  const executions = members.data?.executions ?? [];

  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/">Executions</Link> <span aria-hidden="true">/</span> <span>Batch</span>
      </nav>
      <div className="page-header">
        <h1 className="mono">{id}</h1>
        <div className="actions">
          <button type="button" onClick={() => setRetrying(true)} disabled={!batch.data}>
            Retry failed…
          </button>
        </div>
      </div>

      {batch.error ? (
        <ErrorMessage error={batch.error} />
      ) : batch.isPending ? (
        <p className="muted">Loading batch…</p>
      ) : (
        <div className="panel">
          <p className="batch-summary">
            <strong>{batch.data.total}</strong> {batch.data.total === 1 ? "execution" : "executions"}
            {batch.data.createdAt && <span className="muted"> · created {formatFullTime(toMs(batch.data.createdAt))}</span>}
          </p>
          <ul className="status-counts" data-testid="batch-counts" aria-label="Executions by status">
            {counts.map((count) => (
              <li key={count.status} data-status={statusName(count.status)} data-count={count.count}>
                <StatusBadge status={count.status} /> <span className="count">{count.count}</span>
              </li>
            ))}
          </ul>
        </div>
      )}

      <h2>Members</h2>
      {members.error && <ErrorMessage error={members.error} />}
      {members.isPending ? (
        <p className="muted">Loading executions…</p>
      ) : executions.length === 0 ? (
        members.data && <p className="empty-state">No executions in this batch.</p>
      ) : (
        <ExecutionTable executions={executions} showBatch={false} />
      )}
      <Pager paging={paging} nextToken={members.data?.nextPageToken || undefined} />
      {retrying && <BatchRetryDialog batchId={id} failedCount={failedCount} onClose={() => setRetrying(false)} />}
    </section>
  );
}
