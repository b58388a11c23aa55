import { useState } from "react";
import { Link } from "react-router";
import { isTerminal, statusName } from "../format";
import { ExecutionService, type Execution } from "../proto";
import { useConfirmAction } from "./confirm-action";
import { ErrorMessage } from "./errors";
import { ConfirmFooter, Dialog } from "./modal";
import { StatusBadge } from "./status-badge";

/**
 * Says what a retry re-runs and asks for confirmation. One request_id per opening: every click
 * and every re-send while it is open asks for the same retry, so the server creates one.
 */
export function RetryDialog({ execution: current, onClose }: { execution: Execution; onClose: () => void }) {
  const [requestId] = useState(() => crypto.randomUUID());
  // What the user confirms is the execution as it was when the dialog opened: a re-send must
  // not turn a forced retry into a plain one (or back) under the same request_id.
  const [execution] = useState(current);
  const force = !isTerminal(execution.status);
  const { mutation: retry, confirm } = useConfirmAction(ExecutionService.method.retryExecution, { idempotent: true });

  const created = retry.data?.execution;
  const envKeys = Object.keys(execution.env).sort();
  return (
    <Dialog
      label="Retry execution"
      title={force ? "Force a retry?" : "Retry this execution?"}
      onClose={onClose}
      busy={retry.isPending}
      footer={
        <ConfirmFooter
          action={force ? "Force retry" : "Retry"}
          tone={force ? "danger" : "primary"}
          onConfirm={() => confirm({ executionId: execution.id, force, requestId })}
          pending={retry.isPending}
          done={created !== undefined}
          onClose={onClose}
        />
      }
    >
      {force && (
        <div className="warning" data-testid="retry-warning">
          <p>Warning: Execution status is &apos;{statusName(execution.status)}&apos;</p>
          <p>Use Force retry to retry anyway. The original keeps running.</p>
        </div>
      )}
      <p>A new execution will run with the same script, runtime, arguments, environment and input files (copied on the server):</p>
      <dl className="facts">
        <dt>Script</dt>
        <dd>
          <span className="mono">{execution.script?.name ?? "—"}</span>{" "}
          {execution.script?.sha256 && (
            <span className="mono muted" title={execution.script.sha256}>
              sha256 {execution.script.sha256.slice(0, 12)}
            </span>
          )}
        </dd>
        <dt>Runtime</dt>
        <dd className="mono">{execution.runtime || "—"}</dd>
        <dt>Arguments</dt>
        <dd className="mono">{execution.args.length ? execution.args.join(" ") : <span className="muted">none</span>}</dd>
        <dt>Environment</dt>
        <dd className="mono">{envKeys.length ? envKeys.join(", ") : <span className="muted">none</span>}</dd>
        <dt>Inputs</dt>
        <dd className="mono">
          {execution.inputs.length ? execution.inputs.map((input) => input.name).join(", ") : <span className="muted">none</span>}
        </dd>
        <dt>Timeout</dt>
        <dd>{execution.timeoutSeconds ? `${execution.timeoutSeconds} s` : "service default"}</dd>
      </dl>
      {retry.isPending && <p className="muted">Retrying…</p>}
      {retry.error && <ErrorMessage error={retry.error} />}
      {created && (
        <div className="success">
          <p>
            Retry started:{" "}
            <Link to={`/executions/${created.id}`} className="mono" data-testid="new-execution" onClick={onClose}>
              {created.id}
            </Link>{" "}
            <StatusBadge status={created.status} />
          </p>
          <p className="muted">Original: {execution.id}</p>
        </div>
      )}
    </Dialog>
  );
}
