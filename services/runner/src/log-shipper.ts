// Batches an execution's log lines into AppendLogs calls: numbered from 1 in arrival order, sent
// at most 25 ms after the first line of a batch was printed (or at once when a batch is full by
// lines or bytes), one call in flight at a time so they arrive in order.
// Memory stays bounded while the service is slow or away: beyond a cap, lines are counted, not
// kept, and a system line says how many were dropped once there is room again.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Logger } from "@rgrid/common";
import { LogEntry_Stream, LogEntrySchema } from "@rgrid/proto";
import type { LogEntry } from "@rgrid/proto";
import type { OutputStream } from "./process-runner";

export interface LogShipperOptions {
  /** Delivers one batch; expected to re-send after transport errors itself. */
  send(entries: LogEntry[]): Promise<void>;
  logger: Logger;
  flushIntervalMs?: number;
  maxBatchEntries?: number;
  /** A batch is sent as soon as its lines add up to this many characters. */
  maxBatchChars?: number;
  /** Lines held while delivery lags; a script printing faster than that loses the excess. */
  maxPendingEntries?: number;
  /** Likewise in characters, as lines may be long. */
  maxPendingChars?: number;
  now?: () => Date;
}

export interface LogShipper {
  append(stream: OutputStream, line: string): void;
  /** Sends everything appended so far and stops; resolves once delivered (or given up). */
  close(): Promise<void>;
  /**
   * Stops and hands back the last lines (at most one batch) for the execution's report to carry,
   * which saves a call per short run; anything beyond one batch is delivered first.
   */
  finish(): Promise<LogEntry[]>;
  /**
   * The output has ended and the report is near: lines wait for finish() instead of the batch
   * timer, for at most `maxMillis`, after which they are sent as before. A full batch still goes
   * at once.
   */
  holdForReport(maxMillis: number): void;
}

const STREAMS: Record<OutputStream, LogEntry_Stream> = {
  stdout: LogEntry_Stream.STDOUT,
  stderr: LogEntry_Stream.STDERR,
  system: LogEntry_Stream.SYSTEM,
};

export function createLogShipper(options: LogShipperOptions): LogShipper {
  const flushIntervalMs = options.flushIntervalMs ?? 25;
  const maxBatchEntries = options.maxBatchEntries ?? 500;
  const maxBatchChars = options.maxBatchChars ?? 256 * 1024;
  const maxPendingEntries = options.maxPendingEntries ?? 50_000;
  const maxPendingChars = options.maxPendingChars ?? 16 * 1024 * 1024;
  const now = options.now ?? (() => new Date());

  let pending: LogEntry[] = [];
  let pendingChars = 0;
  let nextSequence = 1n;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let undeliverable = false;
  /** Set by finish: the delivery loop leaves the last batch for the report. */
  let finishing = false;
  let finished = false;
  let droppedLines = 0;

  const push = (stream: LogEntry_Stream, line: string): void => {
    pending.push(create(LogEntrySchema, { sequence: nextSequence++, stream, line, time: timestampFromDate(now()) }));
    pendingChars += line.length;
  };

  /** Takes the next batch off the queue: up to maxBatchEntries lines and maxBatchChars characters. */
  const takeBatch = (): LogEntry[] => {
    let count = 0;
    let chars = 0;
    while (count < pending.length && count < maxBatchEntries && (count === 0 || chars + pending[count].line.length <= maxBatchChars)) {
      chars += pending[count].line.length;
      count++;
    }
    pendingChars -= chars;
    return pending.splice(0, count);
  };

  // One slot stays free for the note about dropped lines, so the note itself is never dropped.
  const hasRoom = (line = "") => pending.length < maxPendingEntries - 1 && pendingChars + line.length <= maxPendingChars;

  /** Puts the note where the dropped lines would have been, before anything appended later. */
  const noteDroppedLines = (): void => {
    if (droppedLines > 0) {
      push(LogEntry_Stream.SYSTEM, `${droppedLines} log lines dropped: the execution service did not accept them fast enough`);
      droppedLines = 0;
    }
  };

  const enqueue = (stream: LogEntry_Stream, line: string): void => {
    if (!hasRoom(line)) {
      droppedLines++;
      return;
    }
    noteDroppedLines();
    push(stream, line);
  };

  const fitsOneBatch = () => droppedLines === 0 && pending.length <= maxBatchEntries && pendingChars <= maxBatchChars;

  const deliverAll = async (): Promise<void> => {
    while (pending.length > 0 && !undeliverable && !(finishing && fitsOneBatch())) {
      const batch = takeBatch();
      try {
        await options.send(batch);
      } catch (error) {
        // The service refused for good (or stayed unreachable through every retry): later
        // batches would fare no better, and the run itself must still finish and be reported.
        undeliverable = true;
        options.logger.error("could not deliver logs; dropping them", {
          lost: batch.length + pending.length,
          error,
        });
        pending = [];
        pendingChars = 0;
      }
    }
  };

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (inFlight === undefined) {
      inFlight = deliverAll().finally(() => {
        inFlight = undefined;
        if (pending.length > 0 && timer === undefined) {
          timer = setTimeout(() => void flush(), flushIntervalMs);
        }
      });
    }
    return inFlight;
  };

  return {
    append(stream, line) {
      if (undeliverable || finished) {
        return;
      }
      enqueue(STREAMS[stream], line);
      // A running delivery loop picks new entries up by itself.
      if (inFlight !== undefined) {
        return;
      }
      if (pending.length >= maxBatchEntries || pendingChars >= maxBatchChars) {
        void flush();
      } else if (timer === undefined) {
        timer = setTimeout(() => void flush(), flushIntervalMs);
      }
    },
    async close() {
      // Entries appended while a batch was in flight are picked up by the loop; keep going
      // until nothing is left.
      while (pending.length > 0 || inFlight !== undefined || (droppedLines > 0 && !undeliverable)) {
        if (hasRoom() && !undeliverable) {
          noteDroppedLines();
        }
        await flush();
      }
      clearTimeout(timer);
    },
    holdForReport(maxMillis) {
      if (finished || inFlight !== undefined) {
        // A delivery in flight takes whatever comes meanwhile; holding would only delay it.
        return;
      }
      clearTimeout(timer);
      timer = setTimeout(() => void flush(), maxMillis);
    },
    async finish() {
      finishing = true;
      for (;;) {
        if (inFlight !== undefined) {
          await inFlight;
          continue;
        }
        if (hasRoom() && !undeliverable) {
          noteDroppedLines();
        }
        if (undeliverable || fitsOneBatch()) {
          break;
        }
        await flush();
      }
      clearTimeout(timer);
      finished = true;
      const last = pending;
      pending = [];
      pendingChars = 0;
      return last;
    },
  };
}
