import { create } from "@bufbuild/protobuf";
import { LogDiff_Result, LogDiffSchema } from "@rgrid/proto";
import type { LogDiff } from "@rgrid/proto";
import { isTerminal } from "../db/entities";
import type { Execution, LogLine } from "../db/entities";
import { logEntryMessage } from "./convert";

/**
 * Lines read from each log at a time. A line is at most 64 KiB, so two pages stay within a few
 * tens of MiB even for the longest lines, and typical logs take one or two reads.
 */
export const LOG_PAGE_SIZE = 500;

type LoggedExecution = Pick<Execution, "id" | "status" | "logsArchived">;
/** A page of an execution's lines after a sequence number, wherever they are (log-archive.ts). */
export type ReadLines = (execution: Pick<Execution, "id" | "logsArchived">, afterSequence: number, limit: number) => Promise<LogLine[]>;

/**
 * Where the logs of two executions first differ, entry by entry (stream and text) in sequence
 * order. Both logs are read a page at a time, in step, and the reading stops at the first
 * difference: two huge logs are never held in memory, and logs that diverge early cost little.
 * An execution that has not finished may still add lines, so such logs are not compared.
 */
export async function compareLogs(
  readLines: ReadLines,
  a: LoggedExecution,
  b: LoggedExecution,
  pageSize = LOG_PAGE_SIZE,
): Promise<LogDiff> {
  const unfinished = [a, b].find((execution) => !isTerminal(execution.status));
  if (unfinished !== undefined) {
    return create(LogDiffSchema, {
      result: LogDiff_Result.NOT_COMPARED,
      reason: `${unfinished.id} is ${unfinished.status}: its log is not complete yet`,
    });
  }
  const linesA = logLines(readLines, a, pageSize);
  const linesB = logLines(readLines, b, pageSize);
  try {
    for (let line = 1; ; line++) {
      const [nextA, nextB] = await Promise.all([linesA.next(), linesB.next()]);
      if (nextA.done === true && nextB.done === true) {
        return create(LogDiffSchema, { result: LogDiff_Result.SAME });
      }
      const entryA = nextA.done === true ? undefined : nextA.value;
      const entryB = nextB.done === true ? undefined : nextB.value;
      if (entryA === undefined || entryB === undefined || entryA.stream !== entryB.stream || entryA.line !== entryB.line) {
        return create(LogDiffSchema, {
          result: LogDiff_Result.DIVERGED,
          line: BigInt(line),
          a: entryA === undefined ? undefined : logEntryMessage(entryA),
          b: entryB === undefined ? undefined : logEntryMessage(entryB),
        });
      }
    }
  } finally {
    await Promise.all([linesA.return(undefined), linesB.return(undefined)]);
  }
}

/** An execution's log lines in sequence order, read a page at a time. */
async function* logLines(readLines: ReadLines, execution: LoggedExecution, pageSize: number): AsyncGenerator<LogLine, void, undefined> {
  let after = 0;
  for (;;) {
    const page = await readLines(execution, after, pageSize);
    yield* page;
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) {
      return;
    }
    after = last.sequence;
  }
}
