import { Code, ConnectError } from "@connectrpc/connect";
import { EXECUTION_ID_PATTERN } from "@rgrid/common";
import type { Dialect } from "../db/orm";

/** Where the previous page of a newest-first listing ended: its last (created_at, id). */
export interface PagePosition {
  createdAt: Date;
  id: string;
}

// Opaque to clients (base64url JSON) so the key can change without breaking their code.
export function encodePageToken(position: PagePosition): string {
  return Buffer.from(JSON.stringify({ c: position.createdAt.getTime(), i: position.id }), "utf8").toString("base64url");
}

/**
 * The condition "after `position`" of a newest-first listing aliased `alias`, as a row value: both
 * databases seek straight to it on an index ending in (created_at, id), where the same condition
 * written as an OR scans every newer row first, so that a deep page would cost more the deeper
 * it was. The time is given as the dialect stores it (SQLite: milliseconds since the epoch).
 */
export function afterPosition(alias: string, dialect: Dialect, position: PagePosition): { sql: string; values: [number | string, string] } {
  const time = dialect === "sqlite" ? position.createdAt.getTime() : position.createdAt.toISOString();
  return { sql: `(${alias}.created_at, ${alias}.id) < (?, ?)`, values: [time, position.id] };
}

/** `idPattern`: what ids of the listed rows look like (executions unless said otherwise). */
export function decodePageToken(token: string, idPattern: RegExp = EXECUTION_ID_PATTERN): PagePosition {
  const invalid = () => new ConnectError("invalid page_token: use next_page_token from a previous response", Code.InvalidArgument);
  const decoded = Buffer.from(token, "base64url");
  // Node's base64 decoder skips characters outside the alphabet, so "<token>\u0000" would
  // decode like "<token>"; only the exact text encodePageToken wrote is a token.
  if (decoded.toString("base64url") !== token) {
    throw invalid();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoded.toString("utf8"));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw invalid();
  }
  const { c, i } = parsed as { c?: unknown; i?: unknown };
  if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 0 || typeof i !== "string" || !idPattern.test(i)) {
    throw invalid();
  }
  return { createdAt: new Date(c), id: i };
}
