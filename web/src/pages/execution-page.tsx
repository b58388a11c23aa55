import { useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type MouseEvent, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useConnectionEvents } from "../app-context";
import { CancelDialog } from "../components/cancel-dialog";
import { useDocumentTitle } from "../components/document-title";
import { ErrorMessage } from "../components/errors";
import { ExecutionHistory } from "../components/execution-history";
import { OverrideChanges } from "../components/override-changes";
import { RetryDialog } from "../components/retry-dialog";
import { StatusBadge } from "../components/status-badge";
import {
  failureKindLabel,
  formatBytes,
  formatDuration,
  formatFullTime,
  formatShortTime,
  isCancellable,
  isTerminal,
  isoTime,
  retryKindLabels,
  retryKindName,
  runDurationMs,
  toMs,
} from "../format";
import { LogView, useFollowLogs } from "../logs";
import { overriddenParts } from "../overrides";
import { ExecutionService, ExecutionStatus, type Execution, type FileInfo, type TransferGrant } from "../proto";
import { invalidateExecution, refreshEvery } from "../queries";

/** Lineages are short; one page of this size holds any real one. */
const LINEAGE_PAGE_SIZE = 500;

/** `/executions/:id`; keyed by the id so that nothing of one execution's page leaks into the next. */
export function ExecutionRoute() {
  const { id = "" } = useParams();
  return <ExecutionPage key={id} id={id} />;
}

function ExecutionPage({ id }: { id: string }) {
  useDocumentTitle(id);
  const [dialog, setDialog] = useState<"retry" | "cancel">();
  const detail = useQuery(
    ExecutionService.method.getExecution,
    { executionId: id },
    {
      refetchInterval: (query) => refreshEvery(query.state.data?.execution ? [query.state.data.execution.status] : []),
    },
  );
  const execution = detail.data?.execution;

  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/">Executions</Link> <span aria-hidden="true">/</span> <span className="mono">{id}</span>
      </nav>
      {detail.isPending ? (
        <p className="muted">Loading execution…</p>
      ) : !execution ? (
        <div className="panel">
          <h1 className="mono">{id}</h1>
          <ErrorMessage error={detail.error ?? new Error("The server returned no execution.")} />
          <p>
            <Link to="/">Back to executions</Link>
          </p>
        </div>
      ) : (
        <>
          <div className="page-header">
            <h1 className="mono">{execution.id}</h1>
            <StatusBadge status={execution.status} testId="execution-status" />
            <div className="actions">
              <button type="button" onClick={() => setDialog("retry")}>
                Retry…
              </button>
              {isCancellable(execution.status) && (
                <button type="button" className="danger-outline" onClick={() => setDialog("cancel")}>
                  Cancel…
                </button>
              )}
            </div>
          </div>
          {detail.error && <ErrorMessage error={detail.error} />}
          <Summary execution={execution} />
          <Lineage execution={execution} />
          <ExecutionHistory executionId={execution.id} status={execution.status} />
          <Files execution={execution} />
          <section className="section">
            <h2>Logs</h2>
            <Logs executionId={execution.id} status={execution.status} />
          </section>
          {dialog === "retry" && <RetryDialog execution={execution} onClose={() => setDialog(undefined)} />}
          {dialog === "cancel" && <CancelDialog execution={execution} onClose={() => setDialog(undefined)} />}
        </>
      )}
    </section>
  );
}

function Fact({ label, children, testId }: { label: string; children: ReactNode; testId?: string }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd data-testid={testId}>{children}</dd>
    </div>
  );
}

function Time({ ms }: { ms: number | undefined }) {
  if (ms === undefined) return <span className="muted">—</span>;
  return (
    <time dateTime={isoTime(ms)} title={formatFullTime(ms)}>
      {formatFullTime(ms)}
    </time>
  );
}

function Summary({ execution }: { execution: Execution }) {
  const created = toMs(execution.createdAt);
  const started = toMs(execution.startedAt);
  const finished = toMs(execution.finishedAt);
  const duration = runDurationMs(execution);
  const waited = started !== undefined && created !== undefined ? started - created : undefined;
  const failureKind = execution.status === ExecutionStatus.FAILED ? failureKindLabel(execution.failureKind) : "";
  const metadata = Object.entries(execution.metadata).sort(([a], [b]) => a.localeCompare(b));
  const envKeys = Object.keys(execution.env).sort();
  return (
    <div className="panel">
      {execution.errorMessage && (
        <div className="error-box">
          <strong>Error</strong>
          <pre className="error-message" data-testid="error-message">
            {execution.errorMessage}
          </pre>
        </div>
      )}
      {execution.sandboxWarnings.length > 0 && (
        <div className="warning">
          <strong>Sandbox warnings</strong>
          <ul>
            {execution.sandboxWarnings.map((warning) => (
              <li key={warning}>{warning}</li>
            ))}
          </ul>
        </div>
      )}
      <OverrideChanges overrides={execution.overrides} />
      <dl className="facts-grid">
        <Fact label="Exit code" testId="exit-code">
          {execution.exitCode ?? "—"}
        </Fact>
        {failureKind && <Fact label="Failure">{failureKind}</Fact>}
        <Fact label="Script">
          <span className="mono">{execution.script?.name ?? "—"}</span>
          {execution.script && (
            <span className="muted">
              {" "}
              · {formatBytes(execution.script.sizeBytes)} ·{" "}
              <span className="mono" title={execution.script.sha256}>
                {execution.script.sha256.slice(0, 12)}
              </span>
            </span>
          )}
        </Fact>
        <Fact label="Runtime">
          <span className="mono">{execution.runtime || "—"}</span>
        </Fact>
        <Fact label="Arguments">
          {execution.args.length ? <span className="mono">{execution.args.join(" ")}</span> : <span className="muted">none</span>}
        </Fact>
        <Fact label="Created">
          <Time ms={created} />
        </Fact>
        <Fact label="Started">
          <Time ms={started} />
          {waited !== undefined && <span className="muted"> · queued {formatDuration(waited)}</span>}
        </Fact>
        <Fact label="Finished">
          <Time ms={finished} />
        </Fact>
        <Fact label="Duration">{duration === undefined ? "—" : formatDuration(duration)}</Fact>
        <Fact label="Runner">{execution.runnerId ? <span className="mono">{execution.runnerId}</span> : <span className="muted">—</span>}</Fact>
        <Fact label="Timeout">{execution.timeoutSeconds ? `${execution.timeoutSeconds} s` : "service default"}</Fact>
        <Fact label="Network">{execution.network ? "allowed" : "none"}</Fact>
        <Fact label="Automatic retries">
          {execution.maxRetries}
          {execution.retryOnExitCodes.length > 0 && (
            <span className="muted"> · on exit codes {execution.retryOnExitCodes.join(", ")}</span>
          )}
        </Fact>
        {execution.batchId && (
          <Fact label="Batch">
            <Link className="mono" to={`/batches/${execution.batchId}`}>
              {execution.batchId}
            </Link>
          </Fact>
        )}
        {execution.cancelRequestedAt && (
          <Fact label="Cancel requested">
            <Time ms={toMs(execution.cancelRequestedAt)} />
          </Fact>
        )}
        {execution.notBefore && execution.status === ExecutionStatus.QUEUED && (
          <Fact label="Runs after">
            <Time ms={toMs(execution.notBefore)} />
          </Fact>
        )}
        <Fact label="Environment">
          {envKeys.length ? <span className="mono">{envKeys.join(", ")}</span> : <span className="muted">none</span>}
        </Fact>
        <Fact label="Metadata">
          {metadata.length ? (
            <span className="chips">
              {metadata.map(([key, value]) => (
                <span key={key} className="chip mono">
                  {key}={value}
                </span>
              ))}
            </span>
          ) : (
            <span className="muted">none</span>
          )}
        </Fact>
      </dl>
    </div>
  );
}

function Lineage({ execution }: { execution: Execution }) {
  const rootId = execution.rootId || execution.id;
  const lineage = useQuery(
    ExecutionService.method.listExecutions,
    { rootId, pageSize: LINEAGE_PAGE_SIZE },
    { refetchInterval: (query) => refreshEvery(query.state.data?.executions.map((step) => step.status) ?? []) },
  );
  // The server lists newest first; a lineage reads from its root to its latest attempt. The
  // execution on show is always its freshest copy: the page re-reads it more often than the list.
  const steps = lineage.data ? [...lineage.data.executions].reverse().filter((step) => step.id !== execution.id) : [];
  steps.push(execution);
  steps.sort((a, b) => (toMs(a.createdAt) ?? 0) - (toMs(b.createdAt) ?? 0));
  const attemptOf = new Map(steps.map((step) => [step.id, step.attempt || 1]));
  return (
    <section className="section">
      <h2>Lineage</h2>
      {(execution.retryOf || execution.retriedAs.length > 0) && (
        <div className="lineage-links">
          {execution.retryOf && (
            <p>
              Retry of:{" "}
              <Link className="mono" to={`/executions/${execution.retryOf}`}>
                {execution.retryOf}
              </Link>
              <span className="muted"> · </span>
              <Link to={`/compare/${execution.retryOf}/${execution.id}`} data-testid="compare-previous">
                Compare with the attempt before
              </Link>
            </p>
          )}
          {execution.retriedAs.length > 0 && (
            <p>
              Retried as:{" "}
              {execution.retriedAs.map((retryId, index) => (
                <span key={retryId}>
                  {index > 0 && ", "}
                  <Link className="mono" to={`/executions/${retryId}`}>
                    {retryId}
                  </Link>
                </span>
              ))}
            </p>
          )}
        </div>
      )}
      {lineage.error && <ErrorMessage error={lineage.error} />}
      <ol className="lineage" data-testid="lineage">
        {steps.map((step, index) => {
          const kind = retryKindName(step);
          const current = step.id === execution.id;
          const previous = steps[index - 1];
          const retriedFrom = step.retryOf && previous?.id !== step.retryOf ? attemptOf.get(step.retryOf) : undefined;
          const changed = overriddenParts(step.overrides);
          return (
            <li
              key={step.id}
              className={current ? "lineage-step current" : "lineage-step"}
              data-execution-id={step.id}
              data-kind={kind}
              aria-current={current ? "true" : undefined}
            >
              <span className="lineage-attempt">#{step.attempt || 1}</span>
              {current ? (
                <span className="mono">{step.id}</span>
              ) : (
                <Link className="mono" to={`/executions/${step.id}`}>
                  {step.id}
                </Link>
              )}
              <StatusBadge status={step.status} />
              <span className={`lineage-kind kind-${kind}`}>
                {retryKindLabels[kind]}
                {kind === "automatic" && step.autoRetryNumber > 0 ? ` ${step.autoRetryNumber}` : ""}
              </span>
              {retriedFrom !== undefined && <span className="muted">of #{retriedFrom}</span>}
              {step.retriedBy && (
                <span className="muted">
                  by <span className="mono">{step.retriedBy}</span>
                </span>
              )}
              {changed.length > 0 && (
                <span className="lineage-changed" data-testid="lineage-changed" title="What this retry changed from the attempt before">
                  changed: {changed.join(", ")}
                </span>
              )}
              {step.retryReason && <span className="lineage-reason">{step.retryReason}</span>}
              <time className="muted lineage-time" dateTime={isoTime(toMs(step.createdAt))} title={formatFullTime(toMs(step.createdAt))}>
                {formatShortTime(toMs(step.createdAt))}
              </time>
            </li>
          );
        })}
      </ol>
      {lineage.data && lineage.data.nextPageToken && (
        <p className="muted">Showing the latest {LINEAGE_PAGE_SIZE} attempts of this lineage.</p>
      )}
    </section>
  );
}

function FileTable({
  files,
  label,
  testId,
  downloads,
  onExpiredGrant,
}: {
  files: readonly FileInfo[];
  label: string;
  testId: string;
  downloads?: ReadonlyMap<string, TransferGrant>;
  onExpiredGrant?: (name: string) => void;
}) {
  return (
    <div className="table-scroll">
      <table className="data-table files-table" data-testid={testId} aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" className="numeric">
              Size
            </th>
            <th scope="col">SHA-256</th>
            {downloads && <th scope="col">Download</th>}
          </tr>
        </thead>
        <tbody>
          {files.map((file) => {
            const grant = downloads?.get(file.name);
            return (
              <tr key={file.name} data-name={file.name}>
                <td className="mono">{file.name}</td>
                <td className="numeric" title={`${file.sizeBytes} bytes`}>
                  {formatBytes(file.sizeBytes)}
                </td>
                <td className="mono hash" title={file.sha256}>
                  {file.sha256}
                </td>
                {downloads && (
                  <td>
                    {grant ? (
                      <a
                        href={grant.url}
                        download={file.name.split("/").pop() || file.name}
                        onClick={(event: MouseEvent) => {
                          if (isExpiring(grant)) {
                            event.preventDefault();
                            onExpiredGrant?.(file.name);
                          }
                        }}
                      >
                        Download
                      </a>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A grant about to expire is renewed before it is followed. */
function isExpiring(grant: TransferGrant, now = Date.now()): boolean {
  const expires = toMs(grant.expiresAt);
  return expires !== undefined && expires - now < 5000;
}

function Files({ execution }: { execution: Execution }) {
  const hasOutputs = execution.outputs.length > 0;
  const downloads = useQuery(
    ExecutionService.method.getOutputDownloads,
    { executionId: execution.id },
    {
      enabled: hasOutputs,
      staleTime: 0,
      // Grants expire: renew them shortly before the first one does, while they are shown.
      refetchInterval: (query) => {
        const expiries = (query.state.data?.downloads ?? []).map((grant) => toMs(grant.expiresAt)).filter((ms) => ms !== undefined);
        if (expiries.length === 0) return false;
        return Math.max(5000, Math.min(...expiries) - Date.now() - 30_000);
      },
    },
  );
  const grants = new Map((downloads.data?.downloads ?? []).map((grant) => [grant.name, grant]));
  const followRenewed = (name: string) => {
    void downloads.refetch().then((result) => {
      const grant = result.data?.downloads.find((candidate) => candidate.name === name);
      if (!grant) return;
      const link = document.createElement("a");
      link.href = grant.url;
      link.download = name.split("/").pop() || name;
      link.click();
    });
  };
  return (
    <section className="section files">
      <div className="files-column">
        <h2>Inputs</h2>
        {execution.inputs.length ? (
          <FileTable files={execution.inputs} label="Inputs" testId="inputs" />
        ) : (
          <p className="muted">No input files.</p>
        )}
      </div>
      <div className="files-column">
        <h2>Outputs</h2>
        {hasOutputs ? (
          <>
            {downloads.error && <ErrorMessage error={downloads.error} prefix="Downloads unavailable" />}
            <FileTable files={execution.outputs} label="Outputs" testId="outputs" downloads={grants} onExpiredGrant={followRenewed} />
          </>
        ) : (
          <p className="muted">{isTerminal(execution.status) ? "No output files." : "Outputs appear when the execution finishes."}</p>
        )}
      </div>
    </section>
  );
}

function Logs({ executionId, status }: { executionId: string; status: ExecutionStatus }) {
  const events = useConnectionEvents();
  const queryClient = useQueryClient();
  const logs = useFollowLogs(executionId, events);
  // The stream says when the status changes (its last message carries the final one): the
  // record is re-read then, rather than waiting for the next refresh.
  useEffect(() => {
    if (logs.status !== undefined && logs.status !== status) {
      void invalidateExecution(queryClient, executionId);
    }
  }, [logs.status, status, executionId, queryClient]);
  return <LogView logs={logs} />;
}
