// A retry's first read, coalesced (batchedWhileBusy): while one lookup statement is on its way to
// the database, the lookups asked for meanwhile wait, and go together as one statement when it
// returns. A busy service pays one statement's round trip, protocol work and executor start-up
// for many retries. Each lookup still gets exactly the rows its own statement would have
// read: the combined statement is the OR of their conditions, and each takes back the rows that
// meet its own.
import { batchedWhileBusy } from "@rgrid/common";
import { Execution } from "../db/entities";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import type { Row } from "../db/sql-session";
import { withSqlSession } from "../db/sql-session";

/** What a retry reads before it copies anything (retry.ts). */
export interface RetryLookup {
  accountId: string;
  /** The original. */
  executionId: string;
  /** An earlier retry made under this request_id answers a re-sent request. */
  requestId: string;
  /** Also the original's other retries, for a retry that must be its only one. */
  otherRetries: boolean;
}

/** The account's executions that `lookup` names: the original, the request_id's, and, when asked, the original's retries. */
export type LookupRetryRows = (lookup: RetryLookup) => Promise<Execution[]>;

/**
 * Lookups in one statement at most: three index lookups each at most, two bound values each, far
 * inside either database's limit, and a plan that stays cheap to make.
 */
export const MAX_LOOKUPS_PER_STATEMENT = 64;

/** Lookups on `db`, coalesced as above; a failed statement fails every lookup it carried, as their own would have. */
export function coalescedRetryLookups(db: Database): LookupRetryRows {
  return batchedWhileBusy<RetryLookup, Execution[]>(MAX_LOOKUPS_PER_STATEMENT, async (lookups) => {
    const rows = await selectAll(db, lookups);
    const codec = rowCodec<Execution>(db.orm, Execution.name);
    const decoded = rows.map((row) => codec.fromRow(row));
    const handedOut = new Set<number>();
    return lookups.map((lookup) => {
      const own: Execution[] = [];
      decoded.forEach((execution, index) => {
        if (meets(execution, lookup)) {
          // Each lookup its own objects: what one retry does with its rows is no other's business.
          own.push(handedOut.has(index) ? codec.fromRow(rows[index] as Row) : execution);
          handedOut.add(index);
        }
      });
      return { value: own };
    });
  });
}

/** The condition of one lookup, as the statement puts it: each term is on an indexed column. */
function meets(execution: Execution, lookup: RetryLookup): boolean {
  return (
    execution.accountId === lookup.accountId &&
    (execution.id === lookup.executionId ||
      execution.requestId === lookup.requestId ||
      (lookup.otherRetries && execution.retryOf === lookup.executionId))
  );
}

/** The column of each term, and the value a lookup looks for in it (none: the lookup has no such term). */
const TERM_COLUMNS: ReadonlyArray<[string, (lookup: RetryLookup) => string | undefined]> = [
  ["id", (lookup) => lookup.executionId],
  ["request_id", (lookup) => lookup.requestId],
  ["retry_of", (lookup) => (lookup.otherRetries ? lookup.executionId : undefined)],
];

/**
 * One statement for all of `lookups`: an OR of `account_id = ? and <column> = ?` terms, each of
 * which an index answers (the primary key, the account's request_ids, retry_of), and each said
 * once however many lookups share it (retries of one original, say). The terms go column by
 * column, each column's padded to a power of two with its last one again, so that the statement
 * has one of a few shapes: PostgreSQL keeps each shape prepared on every connection.
 */
async function selectAll(db: Database, lookups: readonly RetryLookup[]): Promise<Row[]> {
  const conditions: string[] = [];
  const values: string[] = [];
  for (const [column, valueOf] of TERM_COLUMNS) {
    const terms = new Map<string, [string, string]>();
    for (const lookup of lookups) {
      const value = valueOf(lookup);
      if (value !== undefined) {
        terms.set(`${lookup.accountId}\u0000${value}`, [lookup.accountId, value]);
      }
    }
    const pairs = [...terms.values()];
    for (let index = 0; index < paddedCount(pairs.length); index++) {
      conditions.push(`(account_id = ? and ${column} = ?)`);
      values.push(...(pairs[Math.min(index, pairs.length - 1)] as [string, string]));
    }
  }
  return withSqlSession(db, (sql) =>
    sql.query(`select ${rowCodec<Execution>(sql, Execution.name).columns} from executions where ${conditions.join(" or ")}`, values),
  );
}

/** The power of two at or above `count` (0 stays 0). */
function paddedCount(count: number): number {
  return count === 0 ? 0 : 2 ** Math.ceil(Math.log2(count));
}
