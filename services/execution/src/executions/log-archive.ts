// A finished execution's log lines leave the database: they are written as one object in storage
// (executions/<id>/logs/log.jsonl, one JSON line per log line, as GetLogs answers them), then in
// one transaction the execution is marked archived and its rows deleted. So the database holds
// only the lines of executions still running, and GetLogs and FollowLogs read the same lines,
// with the same sequence numbers, from wherever they are.
import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/knex";
import type { Logger } from "@rgrid/common";
import { ARCHIVED_LOG_NAME } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import { Execution, LogLine } from "../db/entities";
import type { LogStreamName } from "../db/entities";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, withSqlSession } from "../db/sql-session";
import { StorageUnavailableError } from "../errors";
import type { ObjectName, StorageGateway, StoredLog } from "../storage";
import { MAX_LOGS_PER_CALL } from "../storage";

const LOG_OBJECT: ObjectName = { kind: ObjectKind.LOG, name: ARCHIVED_LOG_NAME };
/** Finished executions looked up at a time; a pass goes on to the next batch while they come full. */
export const ARCHIVE_BATCH = 50;
/**
 * Batches per pass at most: the archive keeps up with hundreds of executions ending per second,
 * and a pass still ends soon enough for the service to stop without waiting long on it. One
 * storage call at a time: a burst of ends (a batch cancelled, say) is archived at the pace of
 * storage's round trips, leaving the cores between them to the calls being answered.
 */
const MAX_BATCHES_PER_PASS = 20;
/**
 * Logs up to this size travel inside StoreLogs calls, many to a call; larger ones through an
 * upload grant and a transfer each. Most logs are a few lines, for which a grant and a transfer
 * of their own cost storage and this service more than the bytes.
 */
const INLINE_LOG_BYTES = 256 * 1024;
/** The content one StoreLogs carries at most: well inside storage's largest request (4 MiB unless set otherwise). */
const STORE_LOGS_CALL_BYTES = 2 * 1024 * 1024;
/** Archived logs kept parsed in memory, so paging through one does not fetch it per page. */
const CACHED_LOGS = 32;

export interface LogArchive {
  /** The lines after `afterSequence`, at most `limit`, from the database or the archive. */
  readLines(em: EntityManager, execution: Pick<Execution, "id" | "logsArchived">, afterSequence: number, limit: number): Promise<LogLine[]>;
  /**
   * Archives the logs of finished executions, batch after batch while they come full; the ids
   * archived. Once `stopping` is aborted it stores the logs it has read and ends: the rest wait.
   */
  archiveOnce(stopping?: AbortSignal): Promise<string[]>;
}

export interface LogArchiveDeps {
  db: Database;
  storage: StorageGateway;
  logger: Logger;
  /** Bytes over HTTP from storage's grants; the global fetch unless a test says otherwise. */
  fetch?: typeof fetch;
}

export function createLogArchive(deps: LogArchiveDeps): LogArchive {
  const transfer = deps.fetch ?? fetch;
  // Promises, so that readers of one log arriving together share one download.
  const cache = new Map<string, Promise<LogLine[]>>();

  const fetchArchived = (executionId: string): Promise<LogLine[]> => {
    let lines = cache.get(executionId);
    if (lines === undefined) {
      if (cache.size >= CACHED_LOGS) {
        cache.delete(cache.keys().next().value as string);
      }
      lines = downloadArchived(executionId);
      cache.set(executionId, lines);
      lines.catch(() => cache.get(executionId) === lines && cache.delete(executionId));
    }
    return lines;
  };

  const downloadArchived = async (executionId: string): Promise<LogLine[]> => {
    const [grant] = await deps.storage.downloadGrants(executionId, [LOG_OBJECT]);
    let text: string;
    try {
      const response = await transfer(grant!.url, { method: grant!.method, headers: grant!.headers });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      text = await response.text();
    } catch (error) {
      // The caller may try again: storage answered the grant but not the read.
      throw new StorageUnavailableError(`the log of ${executionId} could not be read from storage; try again`, { cause: error });
    }
    return parseLog(executionId, text);
  };

  const fromArchive = async (executionId: string, afterSequence: number, limit: number) =>
    (await fetchArchived(executionId)).filter((line) => line.sequence > afterSequence).slice(0, limit);

  /** The execution's log as the archive keeps it, with the last sequence number it holds. */
  const readLog = (executionId: string): Promise<ArchivedLog> =>
    withSqlSession(deps.db, async (sql) => {
      const logLines = rowCodec<LogLine>(sql, LogLine.name);
      const rows = await sql.query(`select ${logLines.columns} from log_entries where execution_id = ? order by sequence`, [executionId]);
      const lines = rows.map(logLines.fromRow);
      const content = Buffer.from(lines.map((line) => `${JSON.stringify(lineRecord(line))}\n`).join(""), "utf8");
      return { executionId, content, lastSequence: lines.at(-1)?.sequence ?? 0 };
    });

  /** A log too large for StoreLogs, through an upload grant and a transfer of its own. */
  const putThroughGrant = async (log: ArchivedLog): Promise<void> => {
    const sha256 = createHash("sha256").update(log.content).digest("hex");
    const [grant] = await deps.storage.uploadGrants(log.executionId, [{ ...LOG_OBJECT, sha256 }]);
    const response = await transfer(grant!.url, { method: grant!.method, headers: grant!.headers, body: log.content });
    if (!response.ok) {
      throw new Error(`could not store the log of ${log.executionId}: HTTP ${response.status} ${await response.text()}`);
    }
  };

  /** Marks the stored logs' executions archived and deletes their lines, in one transaction; the ids marked. */
  const markArchived = (logs: readonly ArchivedLog[]): Promise<string[]> =>
    // Only lines that are in the object are deleted: none can arrive after the end anyway
    // (AppendLogs refuses a finished execution), and the update is conditional on it.
    inSqlTransaction(deps.db, async (sql) => {
      const marked: string[] = [];
      for (const log of logs) {
        const rows = await sql.query(
          "update executions set logs_archived = ? where id = ? and logs_archived = ? and finished_at is not null returning id",
          [true, log.executionId, false],
        );
        if (rows.length === 1) {
          await sql.query("delete from log_entries where execution_id = ? and sequence <= ?", [log.executionId, log.lastSequence]);
          marked.push(log.executionId);
        }
      }
      return marked;
    });

  /**
   * Archives the logs of one batch, a storage call at a time until `stopped`; the ids archived.
   * Small logs are gathered into StoreLogs calls, so at most one call's worth of them and one
   * large log are in memory at once.
   */
  const archiveBatch = async (executionIds: readonly string[], stopped: () => boolean): Promise<string[]> => {
    const archived: string[] = [];
    // Asked again in every batch: storage may be upgraded meanwhile.
    let storeLogsUnsupported = false;
    const store = async (logs: readonly ArchivedLog[], write: () => Promise<void>) => {
      try {
        await write();
        archived.push(...(await markArchived(logs)));
      } catch (error) {
        deps.logger.warn("could not archive executions' logs; the next pass tries again", {
          executionIds: logs.map((log) => log.executionId).join(","),
          error,
        });
      }
    };
    let gathered: ArchivedLog[] = [];
    let gatheredBytes = 0;
    const storeGathered = async () => {
      const logs = gathered;
      gathered = [];
      gatheredBytes = 0;
      await store(logs, async () => {
        if ((await deps.storage.storeLogs(logs)) === "unsupported") {
          storeLogsUnsupported = true;
          for (const log of logs) {
            await putThroughGrant(log);
          }
        }
      });
    };
    for (const executionId of executionIds) {
      const log = await readLog(executionId);
      if (log.content.length > INLINE_LOG_BYTES || storeLogsUnsupported) {
        await store([log], () => putThroughGrant(log));
      } else {
        if (gathered.length === MAX_LOGS_PER_CALL || gatheredBytes + log.content.length > STORE_LOGS_CALL_BYTES) {
          await storeGathered();
        }
        gathered.push(log);
        gatheredBytes += log.content.length;
      }
      if (stopped()) {
        break;
      }
    }
    if (gathered.length > 0) {
      await storeGathered();
    }
    return archived;
  };

  return {
    async readLines(em, execution, afterSequence, limit) {
      if (execution.logsArchived) {
        return fromArchive(execution.id, afterSequence, limit);
      }
      // Outside the identity map: lines already sent or compared are not kept alive by the fork.
      const lines = await em.find(
        LogLine,
        { executionId: execution.id, sequence: { $gt: afterSequence } },
        { orderBy: { sequence: "asc" }, limit, disableIdentityMap: true },
      );
      if (lines.length === 0) {
        // Archived between the look at the execution and this read: its rows are gone (all at
        // once: the archiver deletes them in one transaction, so a partial page is never its doing).
        const now = await deps.db.fork().findOne(Execution, execution.id, { fields: ["logsArchived"] });
        if (now?.logsArchived === true) {
          return fromArchive(execution.id, afterSequence, limit);
        }
      }
      return lines;
    },

    async archiveOnce(stopping) {
      const archived: string[] = [];
      const stopped = () => stopping?.aborted === true;
      for (let batch = 0; batch < MAX_BATCHES_PER_PASS && !stopped(); batch++) {
        const due = await deps.db.fork().getConnection().execute<Array<{ id: string }>>(
          // The predicate of the partial index executions_logs_to_archive, word for word.
          `select id from executions where logs_archived = false and finished_at is not null order by finished_at limit ${ARCHIVE_BATCH}`,
        );
        const archivedBefore = archived.length;
        archived.push(...(await archiveBatch(due.map((row) => row.id), stopped)));
        // A batch that was not full took the last of them; one that archived nothing (storage
        // away, say) would only fail the same way again until the next pass.
        if (due.length < ARCHIVE_BATCH || archived.length === archivedBefore) {
          break;
        }
      }
      return archived;
    },
  };
}

interface ArchivedLog extends StoredLog {
  /** The last sequence number the content holds; 0 for an empty log. */
  lastSequence: number;
}

interface LineRecord {
  sequence: number;
  stream: LogStreamName;
  line: string;
  time: string;
}

function lineRecord(line: LogLine): LineRecord {
  return { sequence: line.sequence, stream: line.stream, line: line.line, time: line.time.toISOString() };
}

function parseLog(executionId: string, text: string): LogLine[] {
  return text
    .split("\n")
    .filter((row) => row !== "")
    .map((row) => {
      const record = JSON.parse(row) as LineRecord;
      return Object.assign(new LogLine(), { executionId, ...record, time: new Date(record.time) });
    });
}
