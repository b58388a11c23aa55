import { LockMode } from "@mikro-orm/core";
import type { Database } from "../db/orm";
import { Execution, LogLine } from "../db/entities";

export type NewLogLine = Omit<LogLine, "executionId">;

const LOG_INSERT_BATCH = 500;

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
  return db.fork().transactional(async (tx) => {
    const execution = await tx.findOneOrFail(Execution, executionId, {
      fields: ["id", "logBytes", "logsTruncated"],
      lockMode: db.dialect === "postgresql" ? LockMode.PESSIMISTIC_WRITE : undefined,
    });
    const stored = await tx.find(
      LogLine,
      { executionId, sequence: { $in: lines.map((line) => line.sequence) } },
      { fields: ["sequence"] },
    );
    const seen = new Set(stored.map((line) => line.sequence));
    let logBytes = execution.logBytes;
    let truncated = execution.logsTruncated;
    const rows: LogLine[] = [];
    for (const line of [...lines].sort((a, b) => a.sequence - b.sequence)) {
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
    for (let start = 0; start < rows.length; start += LOG_INSERT_BATCH) {
      await tx.createQueryBuilder(LogLine).insert(rows.slice(start, start + LOG_INSERT_BATCH)).execute();
    }
    await tx.nativeUpdate(Execution, { id: executionId }, { logBytes, logsTruncated: truncated });
    return rows.length;
  });
}
