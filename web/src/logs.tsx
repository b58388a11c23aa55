import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { useTransport } from "@connectrpc/connect-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { errorMessage, type ConnectionEvents } from "./connection";
import { streamName, type StreamName } from "./format";
import { ExecutionService, type ExecutionStatus } from "./proto";

type LogLine = { sequence: number; stream: StreamName; text: string };

type FollowState = "connecting" | "streaming" | "reconnecting" | "ended" | "failed";

export type FollowLogs = {
  /** Grows in place as lines arrive; `count` changes with it. */
  lines: readonly LogLine[];
  count: number;
  state: FollowState;
  /** The execution's status as the stream last reported it. */
  status?: ExecutionStatus;
  error?: string;
};

/**
 * Follows an execution's log over FollowLogs until the server ends the stream (the execution is
 * terminal and every line was sent). A dropped stream is re-opened with backoff after the last
 * sequence seen, and lines are kept only when their sequence is past it: nothing missed, nothing
 * shown twice.
 */
export function useFollowLogs(executionId: string, events: ConnectionEvents): FollowLogs {
  const transport = useTransport();
  const client = useMemo(() => createClient(ExecutionService, transport), [transport]);
  // Appended to in place (a copy per batch of lines would cost O(n²) over a long log); `count`
  // is the state that renders it. The page is remounted per execution, so it starts empty.
  const lines = useRef<LogLine[]>([]);
  const [count, setCount] = useState(0);
  const [state, setState] = useState<FollowState>("connecting");
  const [status, setStatus] = useState<ExecutionStatus>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    const abort = new AbortController();
    const received = lines.current;
    let lastSequence = BigInt(received.at(-1)?.sequence ?? 0);
    let failures = 0;

    const follow = async () => {
      while (!abort.signal.aborted) {
        try {
          const stream = client.followLogs({ executionId, afterSequence: lastSequence }, { signal: abort.signal });
          for await (const response of stream) {
            failures = 0;
            events.reportSuccess();
            const before = received.length;
            for (const entry of response.entries) {
              if (entry.sequence <= lastSequence) continue;
              lastSequence = entry.sequence;
              received.push({ sequence: Number(entry.sequence), stream: streamName(entry.stream), text: entry.line });
            }
            if (received.length !== before) setCount(received.length);
            setStatus(response.status);
            setState("streaming");
          }
          if (abort.signal.aborted) return;
          setState("ended");
          return;
        } catch (caught) {
          if (abort.signal.aborted) return;
          const failure = ConnectError.from(caught);
          events.reportError(failure);
          // A refusal would be refused again. Anything else — a lost connection, or a stream cut
          // off mid-message, which browsers report in several ways — is picked up again.
          if (REFUSALS.has(failure.code)) {
            setError(errorMessage(failure));
            setState("failed");
            return;
          }
          setState("reconnecting");
          await sleep(events.retryDelayMs(failures), abort.signal);
          failures++;
        }
      }
    };
    void follow();
    return () => abort.abort();
  }, [client, executionId, events]);

  return { lines: lines.current, count, state, status, error };
}

/** What the server answers on purpose about this request: asking again changes nothing. */
const REFUSALS: ReadonlySet<Code> = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unimplemented,
]);

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      window.clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Fixed, so the virtualizer never measures a line (matches .log-line in styles.css). */
const LOG_LINE_HEIGHT = 18;

const streamTags: Record<StreamName, string> = { stdout: "", stderr: "err", system: "sys" };

const stateLabels: Record<FollowState, string> = {
  connecting: "Connecting…",
  streaming: "Following live",
  reconnecting: "Reconnecting…",
  ended: "End of log",
  failed: "Stopped",
};

/**
 * The log, virtualized (only the visible lines are in the DOM, so 100,000 lines scroll as
 * smoothly as 100) and following the tail while scrolled to the bottom.
 */
export function LogView({ logs }: { logs: FollowLogs }) {
  const scroller = useRef<HTMLDivElement>(null);
  const [following, setFollowing] = useState(true);
  const virtualizer = useVirtualizer({
    count: logs.count,
    getScrollElement: () => scroller.current,
    estimateSize: () => LOG_LINE_HEIGHT,
    overscan: 30,
  });

  // Following the tail: new lines, and a press of "Follow tail", scroll to the last line.
  useLayoutEffect(() => {
    if (following && logs.count > 0) virtualizer.scrollToIndex(logs.count - 1, { align: "end" });
  }, [following, logs.count, virtualizer]);

  const onScroll = () => {
    const element = scroller.current;
    if (!element) return;
    setFollowing(element.scrollHeight - element.scrollTop - element.clientHeight <= LOG_LINE_HEIGHT * 2);
  };

  return (
    <div className="logs-panel">
      <div className="logs-toolbar">
        <span className={`logs-state logs-state-${logs.state}`}>{stateLabels[logs.state]}</span>
        <span className="muted">
          {logs.count.toLocaleString()} {logs.count === 1 ? "line" : "lines"}
        </span>
        {!following && logs.count > 0 && (
          <button type="button" className="small" onClick={() => setFollowing(true)}>
            Follow tail
          </button>
        )}
      </div>
      {logs.error && (
        <p className="error-text" role="alert">
          {logs.error}
        </p>
      )}
      <div
        className="logs"
        data-testid="logs"
        data-line-count={logs.count}
        data-last-sequence={logs.lines[logs.count - 1]?.sequence ?? 0}
        role="log"
        aria-label="Logs"
        aria-live="off"
        tabIndex={0}
        ref={scroller}
        onScroll={onScroll}
      >
        {logs.count === 0 ? (
          <div className="logs-empty">{logs.state === "ended" ? "No output." : "No output yet."}</div>
        ) : (
          <div className="logs-canvas" style={{ height: virtualizer.getTotalSize() }}>
            {virtualizer.getVirtualItems().map((item) => {
              const line = logs.lines[item.index];
              if (!line) return null;
              return (
                <div
                  key={line.sequence}
                  className={`log-line log-${line.stream}`}
                  data-testid="log-line"
                  data-sequence={line.sequence}
                  data-stream={line.stream}
                  style={{ transform: `translateY(${item.start}px)` }}
                >
                  <span className="log-number" aria-hidden="true">
                    {line.sequence}
                  </span>
                  <span className="log-tag">
                    <span className="visually-hidden">{line.stream}: </span>
                    <span aria-hidden="true">{streamTags[line.stream]}</span>
                  </span>
                  <span className="log-text">{line.text}</span>
                </div>
              );
            })}
          </div>
        )}
      </div>
    </div>
  );
}
