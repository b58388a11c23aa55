// A finished execution's log lines leave the database: they are written as one object in storage
// (executions/<id>/logs/log.jsonl, one JSON line per log line, as GetLogs answers them), then in
// one transaction the execution is marked archived and its rows deleted. So the database holds
// only the lines of executions still running, and GetLogs and FollowLogs read the same lines,
// with the same sequence numbers, from wherever they are.
import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/knex";
import type { Logger } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import { Execution, LogLine } from "../db/entities";
import type { LogStreamName } from "../db/entities";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, withSqlSession } from "../db/sql-session";
import { StorageUnavailableError } from "../errors";
import type { ObjectName, StorageGateway } from "../storage";

const LOG_OBJECT: ObjectName = { kind: ObjectKind.LOG, name: "log.jsonl" };
/** Finished executions looked up at a time; a pass goes on to the next batch while they come full. */
export const ARCHIVE_BATCH = 50;
/**
 * Batches per pass at most: the archive keeps up with hundreds of executions ending per second,
 * and a pass still ends soon enough for the service to stop without waiting long on it. One
 * execution at a time: a burst of ends (a batch cancelled, say) is archived at the pace of its
 * storage round trips, leaving the cores between them to the calls being answered.
 */
const MAX_BATCHES_PER_PASS = 20;
/** Archived logs kept parsed in memory, so paging through one does not fetch it per page. */
const CACHED_LOGS = 32;

export interface LogArchive {
  /** The lines after `afterSequence`, at most `limit`, from the database or the archive. */
  readLines(em: EntityManager, execution: Pick<Execution, "id" | "logsArchived">, afterSequence: number, limit: number): Promise<LogLine[]>;
  /**
   * Archives the logs of finished executions, batch after batch while they come full; the ids
   * archived. Once `stopping` is aborted it ends after the execution in hand: the rest wait.
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

  const archiveOne = async (executionId: string): Promise<boolean> => {
    const lines = await withSqlSession(deps.db, async (sql) => {
      const logLines = rowCodec<LogLine>(sql, LogLine.name);
      const rows = await sql.query(`select ${logLines.columns} from log_entries where execution_id = ? order by sequence`, [executionId]);
      return rows.map(logLines.fromRow);
    });
    const body = Buffer.from(lines.map((line) => `${JSON.stringify(lineRecord(line))}\n`).join(""), "utf8");
    const sha256 = createHash("sha256").update(body).digest("hex");
    const [grant] = await deps.storage.uploadGrants(executionId, [{ ...LOG_OBJECT, sha256 }]);
    const response = await transfer(grant!.url, { method: grant!.method, headers: grant!.headers, body });
    if (!response.ok) {
      throw new Error(`could not store the log of ${executionId}: HTTP ${response.status} ${await response.text()}`);
    }
    // Only lines that are in the object are deleted: none can arrive after the end anyway
    // (AppendLogs refuses a finished execution), and the update is conditional on it.
    return inSqlTransaction(deps.db, async (sql) => {
      const marked = await sql.query(
        "update executions set logs_archived = ? where id = ? and logs_archived = ? and finished_at is not null returning id",
        [true, executionId, false],
      );
      if (marked.length === 1) {
        await sql.query("delete from log_entries where execution_id = ? and sequence <= ?", [executionId, lines[lines.length - 1]?.sequence ?? 0]);
      }
      return marked.length === 1;
    });
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
        for (const { id } of due) {
          if (stopped()) {
            return archived;
          }
          try {
            if (await archiveOne(id)) {
              archived.push(id);
            }
          } catch (error) {
            deps.logger.warn("could not archive an execution's log; the next pass tries again", { executionId: id, error });
          }
        }
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
