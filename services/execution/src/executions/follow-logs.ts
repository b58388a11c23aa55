import { create } from "@bufbuild/protobuf";
import { FollowLogsResponseSchema } from "@rgrid/proto";
import type { FollowLogsResponse } from "@rgrid/proto";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { Execution, isTerminal } from "../db/entities";
import type { LogLine } from "../db/entities";
import { logEntryMessage, statusToWire } from "./convert";
import { findOwnedExecution } from "./queries";
import type { ExecutionActivity } from "./execution-activity";
import type { LogArchive } from "./log-archive";

export interface FollowLogsDeps {
  db: Database;
  /** Notified per execution when its log lines are stored or it ends. */
  logActivity: ExecutionActivity;
  /** How often to look again without a notification (changes made by other replicas). */
  recheckMillis?: () => number;
  /** Longest silence while idle; an empty message keeps proxies and clients from giving up. */
  idleMessageMillis?: number;
  /** Where the lines are: the database while the execution runs, storage once archived. */
  logArchive: Pick<LogArchive, "readLines">;
}

export interface FollowLogsRequestFields {
  executionId: string;
  afterSequence: bigint;
}

export type FollowLogs = (caller: Caller, request: FollowLogsRequestFields, signal: AbortSignal) => AsyncGenerator<FollowLogsResponse>;

const MAX_ENTRIES_PER_MESSAGE = 1000;
// Lines may be up to 64 KiB each; this keeps one message far below any client's read limit.
const MAX_LINE_BYTES_PER_MESSAGE = 1024 * 1024;

/**
 * Streams the log lines after `afterSequence` as they are stored, each message carrying the
 * execution's status at the time. The status is read BEFORE the lines: once it reads terminal,
 * every line stored before the end is in the read that follows, so the stream can end after
 * sending it without losing a line. The first message goes out at once, so a client learns the
 * status without waiting for output.
 */
export function createFollowLogs(deps: FollowLogsDeps): FollowLogs {
  const { db, logActivity } = deps;
  const recheckMillis = deps.recheckMillis ?? (() => 1000);
  const idleMessageMillis = deps.idleMessageMillis ?? 15_000;

  return async function* followLogs(caller, request, signal) {
    const em = db.fork();
    const owned = await findOwnedExecution(em, caller.accountId, request.executionId);
    let after = Number(request.afterSequence);
    // As if the last message were long ago: the first look is sent at once.
    let lastSentAt = Number.NEGATIVE_INFINITY;
    while (!signal.aborted) {
      const watch = logActivity.watch(owned.id);
      try {
        em.clear();
        const { status, logsArchived } = await em.findOneOrFail(Execution, owned.id, { fields: ["status", "logsArchived"] });
        const lines = await deps.logArchive.readLines(em, { id: owned.id, logsArchived }, after, MAX_ENTRIES_PER_MESSAGE);
        const page = withinByteBudget(lines);
        const more = page.length < lines.length || lines.length === MAX_ENTRIES_PER_MESSAGE;
        const terminal = isTerminal(status);
        const idleTooLong = Date.now() - lastSentAt >= idleMessageMillis;
        if (page.length > 0 || idleTooLong || (terminal && !more)) {
          yield create(FollowLogsResponseSchema, {
            entries: page.map(logEntryMessage),
            status: statusToWire(status),
          });
          lastSentAt = Date.now();
          after = page[page.length - 1]?.sequence ?? after;
        }
        if (terminal && !more) {
          return;
        }
        if (!more) {
          const untilIdleMessage = lastSentAt + idleMessageMillis - Date.now();
          await watch.wait(Math.min(recheckMillis(), untilIdleMessage), signal);
        }
      } finally {
        // Also when the client goes away mid-yield: no watch outlives its stream.
        watch.stop();
      }
    }
  };
}

/** The leading lines whose text fits the byte budget; always at least one, so a stream moves on. */
function withinByteBudget(lines: readonly LogLine[]): LogLine[] {
  let bytes = 0;
  let count = 0;
  for (const line of lines) {
    bytes += Buffer.byteLength(line.line, "utf8");
    if (count > 0 && bytes > MAX_LINE_BYTES_PER_MESSAGE) {
      break;
    }
    count++;
  }
  return lines.slice(0, count);
}

