import { useQuery } from "@connectrpc/connect-query";
import { ExecutionService, type ExecutionStatus } from "../proto";
import { refreshEvery } from "../queries";
import { AuditTable } from "./audit-table";
import { ErrorMessage } from "./errors";

/** The server's largest page; a lineage's history is far shorter. */
const HISTORY_PAGE_SIZE = 500;

/**
 * What was asked of the execution's lineage (retries, cancels: who, why, what came of it),
 * oldest first like the lineage above it. The server answers for every attempt of the lineage.
 */
export function ExecutionHistory({ executionId, status }: { executionId: string; status: ExecutionStatus }) {
  const history = useQuery(
    ExecutionService.method.listAuditEntries,
    { executionId, pageSize: HISTORY_PAGE_SIZE },
    // A retry or cancel made elsewhere adds entries; re-read as often as the execution itself.
    { refetchInterval: refreshEvery([status]) },
  );
  const entries = history.data ? [...history.data.entries].reverse() : [];
  return (
    <section className="section">
      <h2>History</h2>
      {history.error && <ErrorMessage error={history.error} />}
      {history.isPending ? (
        <p className="muted">Loading history…</p>
      ) : entries.length === 0 ? (
        history.data && <p className="muted" data-testid="history-empty">Nothing was asked of this lineage yet: no retries or cancels.</p>
      ) : (
        <AuditTable entries={entries} testId="history" />
      )}
      {history.data?.nextPageToken && <p className="muted">Showing the latest {HISTORY_PAGE_SIZE} entries of this lineage.</p>}
    </section>
  );
}
