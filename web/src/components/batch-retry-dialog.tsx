import { useState } from "react";
import { Link } from "react-router";
import { ExecutionService } from "../proto";
import { useConfirmAction } from "./confirm-action";
import { ErrorMessage } from "./errors";
import { ConfirmFooter, Dialog } from "./modal";
import { StatusBadge } from "./status-badge";

/** Retries the failed and timed-out executions of a batch; one request_id per opening. */
export function BatchRetryDialog({
  batchId,
  failedCount,
  onClose,
}: {
  batchId: string;
  /** Failed plus timed-out executions as last counted, for the question. */
  failedCount: number | undefined;
  onClose: () => void;
}) {
  const [requestId] = useState(() => crypto.randomUUID());
  const { mutation: retryBatch, confirm } = useConfirmAction(ExecutionService.method.retryBatch, { idempotent: true });
  const result = retryBatch.data;
  return (
    <Dialog
      label="Retry failed executions"
      title="Retry the failed executions of this batch?"
      onClose={onClose}
      busy={retryBatch.isPending}
      wide
      footer={
        <ConfirmFooter
          action="Retry failed"
          tone="primary"
          onConfirm={() => confirm({ batchId, failedOnly: true, requestId })}
          pending={retryBatch.isPending}
          done={result !== undefined}
          onClose={onClose}
        />
      }
    >
      {!result && (
        <p>
          Every failed and timed-out execution of <span className="mono">{batchId}</span>
          {failedCount !== undefined ? ` (${failedCount} as last counted)` : ""} gets a new execution with the same script,
          arguments and inputs. Executions that are already being retried are skipped.
        </p>
      )}
      {retryBatch.isPending && <p className="muted">Retrying…</p>}
      {retryBatch.error && <ErrorMessage error={retryBatch.error} />}
      {result && (
        <>
          <p className="success" data-testid="batch-retry-summary">
            Retried {result.retriedCount}, skipped {result.skippedCount}.
          </p>
          {result.items.length > 0 && (
            <div className="table-scroll dialog-table">
              <table className="data-table" data-testid="batch-retry-result">
                <thead>
                  <tr>
                    <th scope="col">Original</th>
                    <th scope="col">Status</th>
                    <th scope="col">Retry</th>
                  </tr>
                </thead>
                <tbody>
                  {result.items.map((item, index) => {
                    const original = item.original;
                    const retry = item.retry;
                    return (
                      <tr key={original?.id ?? index} data-original-id={original?.id ?? ""} data-retry-id={retry?.id ?? ""}>
                        <td className="mono">
                          {original ? <Link to={`/executions/${original.id}`}>{original.id}</Link> : "—"}
                        </td>
                        <td>{original && <StatusBadge status={original.status} />}</td>
                        <td className="mono">
                          {retry ? (
                            <Link to={`/executions/${retry.id}`}>{retry.id}</Link>
                          ) : (
                            <span className="muted">skipped{item.skipped ? `: ${item.skipped}` : ""}</span>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Dialog>
  );
}
