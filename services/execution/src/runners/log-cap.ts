import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, placeholders } from "../db/sql-session";
import type { SqlSession } from "../db/sql-session";
import { Execution, LogLine } from "../db/entities";
import { NotFoundError } from "../errors";

export type NewLogLine = Omit<LogLine, "executionId">;

/**
 * The most rows one statement carries. Statements carry a power of two of rows up to this, so
 * that a few SQL texts serve every batch size and each stays prepared (db/sql-session.ts).
 */
const LOG_INSERT_BATCH = 256;

export function truncationMarker(maxLogBytes: number): string {
  return `[rgrid] log truncated: output exceeded ${maxLogBytes} bytes; later lines were not stored`;
}

/**
 * Stores an execution's log lines up to `maxLogBytes` of line text. The first line that would
 * pass the cap is stored as ONE system line saying so, under that line's sequence number, and
 * every later line is dropped. A resent line is recognised by its sequence number and neither
 * stored nor counted twice. One transaction per batch keeps the byte count exact: PostgreSQL
 * holds the execution's row, SQLite's single writer excludes concurrent appends. Returns how
 * many rows were stored (0 for a resend), so only a change wakes the execution's followers.
 */
export async function appendCappedLogs(
  db: Database,
  executionId: string,
  lines: readonly NewLogLine[],
  maxLogBytes: number,
): Promise<number> {
  if (lines.length === 0) {
    return 0;
  }
  return inSqlTransaction(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    const lock = db.dialect === "postgresql" ? " for update" : "";
    const [row] = await sql.query(`select ${executions.columnsOf(["logBytes", "logsTruncated"])} from executions where id = ?${lock}`, [executionId]);
    if (row === undefined) {
      throw new NotFoundError(`execution ${executionId} not found`);
    }
    const execution = executions.fromRow(row);
    const sorted = [...lines].sort((a, b) => a.sequence - b.sequence);
    const seen = await storedSequences(sql, executionId, sorted.map((line) => line.sequence));
    let logBytes = execution.logBytes;
    let truncated = execution.logsTruncated;
    const rows: LogLine[] = [];
    for (const line of sorted) {
      if (truncated || seen.has(line.sequence)) {
        continue;
      }
      seen.add(line.sequence);
      const size = Buffer.byteLength(line.line, "utf8");
      if (logBytes + size > maxLogBytes) {
        truncated = true;
        rows.push({ executionId, sequence: line.sequence, stream: "system", line: truncationMarker(maxLogBytes), time: line.time });
        continue;
      }
      logBytes += size;
      rows.push({ executionId, ...line });
    }
    if (rows.length === 0) {
      return 0;
    }
    const logLines = rowCodec<LogLine>(sql, LogLine.name);
    for (let start = 0; start < rows.length; ) {
      const count = largestPowerOfTwoUpTo(Math.min(rows.length - start, LOG_INSERT_BATCH));
      await sql.query(logLines.insertRowsSql(count), rows.slice(start, start + count).flatMap(logLines.insertValues));
      start += count;
    }
    const set = executions.assignments({ logBytes, logsTruncated: truncated });
    await sql.query(`update executions set ${set.sql} where id = ?`, [...set.values, executionId]);
    return rows.length;
  });
}

/** Which of these sequence numbers are stored already. */
async function storedSequences(sql: SqlSession, executionId: string, sequences: readonly number[]): Promise<Set<number>> {
  const stored = new Set<number>();
  for (let start = 0; start < sequences.length; start += LOG_INSERT_BATCH) {
    const chunk = sequences.slice(start, start + LOG_INSERT_BATCH);
    // Padded with its last number to a power of two, as the inserts are sized.
    const padded = [...chunk, ...Array<number>(smallestPowerOfTwoFrom(chunk.length) - chunk.length).fill(chunk[chunk.length - 1] as number)];
    const rows = await sql.query(`select sequence from log_entries where execution_id = ? and sequence in (${placeholders(padded)})`, [executionId, ...padded]);
    rows.forEach((row) => stored.add(Number(row["sequence"])));
  }
  return stored;
}

function largestPowerOfTwoUpTo(count: number): number {
  return 2 ** Math.floor(Math.log2(count));
}

function smallestPowerOfTwoFrom(count: number): number {
  return 2 ** Math.ceil(Math.log2(count));
}
