import { randomUUID } from "node:crypto";
import { createContextKey } from "@connectrpc/connect";

/**
 * The header a client may name its request with, so that its own logs and ours can be matched;
 * every RPC answer carries the id it was logged under in the same header.
 */
export const REQUEST_ID_HEADER = "x-request-id";

/** Longer than any id scheme in use (a UUID is 36 characters), short enough to log on every line. */
const MAX_REQUEST_ID_CHARS = 128;

// Printable ASCII without spaces: what request ids are made of, and nothing a log line, a
// terminal or a header could take for structure.
const SANE_REQUEST_ID = new RegExp(`^[\\x21-\\x7e]{1,${MAX_REQUEST_ID_CHARS}}$`);

/** The request id an RPC's log lines carry, for code that logs on its behalf (the error interceptor). */
export const requestIdKey = createContextKey<string | undefined>(undefined, { description: "request id" });

/**
 * The client's request id when it sent a sane one, else a fresh one: an id with control
 * characters, spaces or unbounded length is replaced, never logged, so a client cannot forge
 * or break log lines with it.
 */
export function requestIdFor(sent: string | null): string {
  return sent !== null && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
}
