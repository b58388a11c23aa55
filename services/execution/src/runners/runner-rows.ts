import type { Database } from "../db/orm";
import { Runner } from "../db/entities";
import { rowCodec } from "../db/row-codec";
import { withSqlSession } from "../db/sql-session";

/**
 * Records that the runner was seen at `now` and answers with its row, in one statement on a held
 * connection (db/sql-session.ts): every claim and heartbeat starts with it. Undefined for a
 * runner that is not registered.
 */
export async function touchRunner(db: Database, runnerId: string, now: Date): Promise<Runner | undefined> {
  return withSqlSession(db, async (sql) => {
    const runners = rowCodec<Runner>(sql, Runner.name);
    const set = runners.assignments({ lastSeenAt: now });
    const [row] = await sql.query(`update runners set ${set.sql} where id = ? returning ${runners.columns}`, [...set.values, runnerId]);
    return row === undefined ? undefined : runners.fromRow(row);
  });
}
