import { useQuery } from "@connectrpc/connect-query";
import type { ReactNode } from "react";
import { Link, useParams } from "react-router";
import { useDocumentTitle } from "../components/document-title";
import { ErrorMessage } from "../components/errors";
import { StatusBadge } from "../components/status-badge";
import {
  argsText,
  changeName,
  collectionSummary,
  fileFacts,
  fileText,
  listText,
  onOff,
  outcomeText,
} from "../comparison";
import { isTerminal, shortId, streamName, timeoutText } from "../format";
import {
  DiffChange,
  ExecutionService,
  LogDiff_Result,
  type DiffExecutionsResponse,
  type DiffSide,
  type EnvDiff,
  type InputDiff,
  type LogDiff,
  type LogEntry,
} from "../proto";
import { LIVE_REFRESH_MS } from "../queries";

/**
 * `/compare/:a/:b`: what differs between two executions, usually an attempt and the one before
 * it, grouped as `rgrid diff` groups it; the parts that are the same are named in one line.
 */
export function ComparePage() {
  const { a = "", b = "" } = useParams();
  useDocumentTitle("Compare");
  const diff = useQuery(
    ExecutionService.method.diffExecutions,
    // Env values stay on the server: the console shows env keys only.
    { executionA: a, executionB: b },
    {
      // Until both have finished, the outcome and the logs can still change; after that nothing
      // compared can, and comparing the logs again would only cost the server.
      refetchInterval: (query) => {
        if (query.state.error !== null && query.state.data === undefined) {
          return false; // refused (not found, say): asking again would be refused again
        }
        const { a: sideA, b: sideB } = query.state.data ?? {};
        return sideA && sideB && isTerminal(sideA.status) && isTerminal(sideB.status) ? false : LIVE_REFRESH_MS;
      },
    },
  );
  return (
    <section className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to="/">Executions</Link> <span aria-hidden="true">/</span> <span>Compare</span>
      </nav>
      <div className="page-header">
        <h1>Compare executions</h1>
      </div>
      {diff.error && <ErrorMessage error={diff.error} />}
      {diff.isPending ? <p className="muted">Comparing…</p> : diff.data && <Comparison diff={diff.data} />}
    </section>
  );
}

function Comparison({ diff }: { diff: DiffExecutionsResponse }) {
  const { a, b } = diff;
  if (!a || !b) return <ErrorMessage error={new Error("The server's answer did not describe both executions.")} />;
  const same = sameParts(diff);
  return (
    <>
      <div className="panel compare-sides">
        <SideTitle label="a" side={a} />
        <SideTitle label="b" side={b} />
      </div>
      <h2>Differences</h2>
      <div className="panel diff-groups" data-testid="differences">
        {diff.script !== DiffChange.SAME && (
          <DiffGroup name="Script" group="script" summary={changeName(diff.script)}>
            <Sides a={<span className="mono">{fileText(a.script)}</span>} b={<span className="mono">{fileText(b.script)}</span>} />
          </DiffGroup>
        )}
        <CollectionGroup name="Inputs" group="inputs" items={diff.inputs} item={(input) => <InputItem input={input} />} />
        {diff.args !== DiffChange.SAME && (
          <DiffGroup name="Args" group="args" summary={changeName(diff.args)}>
            <Sides a={<span className="mono">{argsText(a.args)}</span>} b={<span className="mono">{argsText(b.args)}</span>} />
          </DiffGroup>
        )}
        <CollectionGroup name="Env" group="env" items={diff.env} item={(entry) => <EnvItem entry={entry} />} />
        {diff.runtime !== DiffChange.SAME && <OneLineGroup name="Runtime" group="runtime" a={a.runtime} b={b.runtime} />}
        {diff.timeout !== DiffChange.SAME && (
          <OneLineGroup name="Timeout" group="timeout" a={timeoutText(a.timeoutSeconds)} b={timeoutText(b.timeoutSeconds)} />
        )}
        {diff.network !== DiffChange.SAME && <OneLineGroup name="Network" group="network" a={onOff(a.network)} b={onOff(b.network)} />}
        {diff.runner !== DiffChange.SAME && (
          <OneLineGroup name="Runner" group="runner" a={a.runnerId || "(none)"} b={b.runnerId || "(none)"} />
        )}
        {diff.sandboxWarnings !== DiffChange.SAME && (
          <DiffGroup name="Sandbox warnings" group="sandbox" summary={changeName(diff.sandboxWarnings)}>
            <Sides a={listText(a.sandboxWarnings)} b={listText(b.sandboxWarnings)} />
          </DiffGroup>
        )}
        {diff.outcome !== DiffChange.SAME && (
          <DiffGroup name="Outcome" group="outcome" summary={changeName(diff.outcome)}>
            <Sides a={<Outcome side={a} />} b={<Outcome side={b} />} />
          </DiffGroup>
        )}
        {diff.logs?.result !== LogDiff_Result.SAME && <LogsGroup logs={diff.logs} />}
        {same.length > 0 && (
          <p className="diff-same" data-testid="diff-same">
            <span className="muted">Same:</span> {same.join(", ")}
          </p>
        )}
      </div>
    </>
  );
}

/** The groups that compare the same, in the order of the report; collections only when every item is the same. */
function sameParts(diff: DiffExecutionsResponse): string[] {
  const allSame = (items: readonly { change: DiffChange }[]) => items.length > 0 && items.every((item) => item.change === DiffChange.SAME);
  const parts: Array<[string, boolean]> = [
    ["Script", diff.script === DiffChange.SAME],
    ["Inputs", allSame(diff.inputs)],
    ["Args", diff.args === DiffChange.SAME],
    ["Env", allSame(diff.env)],
    ["Runtime", diff.runtime === DiffChange.SAME],
    ["Timeout", diff.timeout === DiffChange.SAME],
    ["Network", diff.network === DiffChange.SAME],
    ["Runner", diff.runner === DiffChange.SAME],
    ["Sandbox warnings", diff.sandboxWarnings === DiffChange.SAME],
    ["Outcome", diff.outcome === DiffChange.SAME],
    ["Logs", diff.logs?.result === LogDiff_Result.SAME],
  ];
  return parts.filter(([, same]) => same).map(([name]) => name);
}

function SideTitle({ label, side }: { label: "a" | "b"; side: DiffSide }) {
  const ofLineage = side.rootId !== "" && side.rootId !== side.executionId;
  return (
    <p className="compare-side" data-testid={`compare-${label}`} data-execution-id={side.executionId}>
      <span className="side-label">{label}</span>
      <Link className="mono" to={`/executions/${side.executionId}`}>
        {side.executionId}
      </Link>
      <span className="muted">
        attempt {side.attempt || 1}
        {ofLineage && (
          <>
            {" of "}
            <Link className="mono" to={`/executions/${side.rootId}`} title={side.rootId}>
              {shortId(side.rootId)}
            </Link>
          </>
        )}
      </span>
      <StatusBadge status={side.status} />
    </p>
  );
}

function DiffGroup({ name, group, summary, children }: { name: string; group: string; summary: string; children?: ReactNode }) {
  return (
    <div className="diff-group" data-testid="diff-group" data-group={group}>
      <h3 className="diff-title">
        {name} <span className="diff-summary">{summary}</span>
      </h3>
      {children}
    </div>
  );
}

/** The a and b values of a part, one under the other so that they read side by side. */
function Sides({ a, b }: { a: ReactNode; b: ReactNode }) {
  return (
    <dl className="diff-sides">
      <dt>a</dt>
      <dd data-side="a">{a}</dd>
      <dt>b</dt>
      <dd data-side="b">{b}</dd>
    </dl>
  );
}

/** A part with a short value: "python → python:3.12". */
function OneLineGroup({ name, group, a, b }: { name: string; group: string; a: string; b: string }) {
  return (
    <DiffGroup name={name} group={group} summary="changed">
      <p className="diff-line">
        <span className="mono">{a}</span> <span aria-label="to">→</span> <span className="mono">{b}</span>
      </p>
    </DiffGroup>
  );
}

/** Inputs and env keys: how many compare which way, then only the items that differ. */
function CollectionGroup<T extends { change: DiffChange }>({
  name,
  group,
  items,
  item,
}: {
  name: string;
  group: string;
  items: readonly T[];
  item: (value: T) => ReactNode;
}) {
  const differing = items.filter((value) => value.change !== DiffChange.SAME);
  if (differing.length === 0) return null;
  return (
    <DiffGroup name={name} group={group} summary={collectionSummary(items)}>
      <ul className="diff-items">
        {differing.map((value, index) => (
          <li key={index} data-change={changeName(value.change)}>
            <ChangeTag change={value.change} />
            {item(value)}
          </li>
        ))}
      </ul>
    </DiffGroup>
  );
}

function ChangeTag({ change }: { change: DiffChange }) {
  const name = changeName(change);
  return <span className={`change-tag change-${name}`}>{name}</span>;
}

function InputItem({ input }: { input: InputDiff }) {
  return (
    <>
      <span className="mono">{input.name}</span>
      <span className="muted" title={[input.a?.sha256, input.b?.sha256].filter(Boolean).join(" → ")}>
        {input.change === DiffChange.CHANGED ? `${fileFacts(input.a)} → ${fileFacts(input.b)}` : fileFacts(input.a ?? input.b)}
      </span>
    </>
  );
}

/** The key alone: the values are never asked for. */
function EnvItem({ entry }: { entry: EnvDiff }) {
  return <span className="mono">{entry.key}</span>;
}

function Outcome({ side }: { side: DiffSide }) {
  return (
    <>
      <span>{outcomeText(side)}</span>
      {side.errorMessage && <pre className="diff-error">{side.errorMessage}</pre>}
    </>
  );
}

function LogsGroup({ logs }: { logs: LogDiff | undefined }) {
  if (logs?.result === LogDiff_Result.DIVERGED) {
    return (
      <DiffGroup name="Logs" group="logs" summary={`differ from line ${logs.line}`}>
        <Sides a={<LogEntryText entry={logs.a} />} b={<LogEntryText entry={logs.b} />} />
      </DiffGroup>
    );
  }
  return <DiffGroup name="Logs" group="logs" summary={`not compared (${logs?.reason || "the server did not compare them"})`} />;
}

function LogEntryText({ entry }: { entry: LogEntry | undefined }) {
  if (!entry) return <span className="muted">(end of log)</span>;
  const stream = streamName(entry.stream);
  return (
    <span className={`diff-log-line diff-log-${stream}`}>
      <span className="diff-log-stream">{stream}</span>
      <span className="mono">{entry.line}</span>
    </span>
  );
}
