import { cors as connectCors } from "@connectrpc/connect";
import { REQUEST_ID_HEADER } from "./request-id";
import type { NodeHandler } from "./server";

type NodeRequest = Parameters<NodeHandler>[0];
type NodeResponse = Parameters<NodeHandler>[1];

// What browser pages on the allowed origins may send and read: the headers Connect, gRPC-Web and
// gRPC need, plus Authorization for the API key and the request id both ways. Credentials
// (cookies) are never allowed across origins: the console's session works only on its own origin.
const ALLOWED_METHODS = connectCors.allowedMethods.join(", ");
const ALLOWED_HEADERS = [...connectCors.allowedHeaders, "Authorization", REQUEST_ID_HEADER].join(", ");
const EXPOSED_HEADERS = [...connectCors.exposedHeaders, REQUEST_ID_HEADER].join(", ");
/** Browsers cache an answered preflight this long (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

/**
 * Applies the exact-origin CORS allow-list to one request. Answers a preflight itself (returns
 * true: the request is done); otherwise adds the headers a listed origin needs and returns false.
 * Origins not listed get no CORS headers at all, and their preflights a plain 403.
 */
export function applyCors(allowedOrigins: ReadonlySet<string>, req: NodeRequest, res: NodeResponse): boolean {
  const origin = req.headers.origin;
  const isPreflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
  if (allowedOrigins.size > 0) {
    // Answers differ by Origin, so caches must key on it.
    res.setHeader("Vary", "Origin");
  }
  const allowed = typeof origin === "string" && allowedOrigins.has(origin);
  if (allowed) {
    res.setHeader("Access-Control-Allow-Origin", origin);
  }
  if (isPreflight) {
    if (allowed) {
      res.setHeader("Access-Control-Allow-Methods", ALLOWED_METHODS);
      res.setHeader("Access-Control-Allow-Headers", ALLOWED_HEADERS);
      res.setHeader("Access-Control-Max-Age", String(PREFLIGHT_MAX_AGE_SECONDS));
    }
    res.writeHead(allowed ? 204 : 403);
    res.end();
    return true;
  }
  if (allowed) {
    res.setHeader("Access-Control-Expose-Headers", EXPOSED_HEADERS);
  }
  return false;
}

/** Checks a configured allow-list: exact origins (scheme://host[:port]), nothing else. */
export function corsOriginProblem(origin: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return `"${origin}" is not an origin such as https://app.example.com`;
  }
  if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.origin !== origin) {
    return `"${origin}" is not an exact origin: write scheme://host[:port] with no path or trailing slash, e.g. ${parsed.origin}`;
  }
  return undefined;
}
