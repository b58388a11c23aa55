import { useState } from "react";
import { isTerminal, statusName } from "../format";
import { ErrorInfo_Reason, ExecutionService, ExecutionStatus, type Execution } from "../proto";
import { refusalOf } from "../refusals";
import { useConfirmAction } from "./confirm-action";
import { ErrorMessage } from "./errors";
import { ConfirmFooter, Dialog } from "./modal";
import { StatusBadge } from "./status-badge";

/** Confirms a cancel; a running execution is stopped by its runner, anything earlier at once. */
export function CancelDialog({ execution: current, onClose }: { execution: Execution; onClose: () => void }) {
  // The question is about the execution as it was when asked: the page behind it goes on
  // refreshing, and "is cancelled. It will be cancelled…" would make no sense.
  const [execution] = useState(current);
  // Not re-sent by itself: a cancel carries no request id to make a second one harmless.
  const { mutation: cancel, confirm } = useConfirmAction(ExecutionService.method.cancelExecution, { idempotent: false });
  const result = cancel.data?.execution;
  // Finished before the cancel arrived: the refusal carries the status it finished with, so
  // there is nothing left to confirm and nothing to ask the server.
  const refusal = refusalOf(cancel.error);
  const finishedFirst = refusal?.reason === ErrorInfo_Reason.ALREADY_TERMINAL ? refusal.status : undefined;
  const running = execution.status === ExecutionStatus.RUNNING;
  return (
    <Dialog
      label="Cancel execution"
      title="Cancel this execution?"
      onClose={onClose}
      busy={cancel.isPending}
      footer={
        <ConfirmFooter
          action="Cancel execution"
          tone="danger"
          onConfirm={() => confirm({ executionId: execution.id })}
          pending={cancel.isPending}
          done={result !== undefined || finishedFirst !== undefined}
          onClose={onClose}
        />
      }
    >
      {!result && finishedFirst === undefined && (
        <p>
          <span className="mono">{execution.id}</span> is {statusName(execution.status)}.{" "}
          {running ? "Its runner will be told to stop the script." : "It will be cancelled before it runs."}
        </p>
      )}
      {cancel.isPending && <p className="muted">Cancelling…</p>}
      {cancel.error && <ErrorMessage error={cancel.error} />}
      {finishedFirst !== undefined && (
        <p data-testid="finished-first">
          Status: <StatusBadge status={finishedFirst} />
        </p>
      )}
      {result && (
        <p className="success">
          {isTerminal(result.status) ? "Cancelled. " : "Cancellation requested: the runner is stopping it. "}
          Status: <StatusBadge status={result.status} />
        </p>
      )}
    </Dialog>
  );
}
