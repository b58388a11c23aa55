import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import type { NodeHandler } from "@rgrid/common";

// The browser console: the built single-page app, served on execution-service's own port so it
// calls the API from the same origin. RPC paths are routed before this handler is asked, so it
// can never shadow one.

/** The console makes requests only to its own origin and runs only its own files. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** Vite names built assets by content hash: they never change, so browsers keep them for a year. */
const HASHED_ASSETS = "/assets/";
const FOREVER = "public, max-age=31536000, immutable";
/** index.html names the current assets: revalidated on every load, so a deploy shows at once. */
const ALWAYS_REVALIDATE = "no-cache";
/** Text this small gains nothing from compression. */
const COMPRESS_FROM_BYTES = 1024;

export interface ConsoleFile {
  body: Buffer;
  gzip?: Buffer;
  brotli?: Buffer;
  contentType: string;
  cacheControl: string;
  etag: string;
}

/**
 * Reads the built console once, at start (a few hundred KiB), with compressed copies made up
 * front; nothing on disk is consulted per request, so no request path can reach another file.
 */
export function loadConsoleFiles(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  if (!existsSync(join(dir, "index.html"))) {
    return files;
  }
  for (const path of walk(dir)) {
    const urlPath = "/" + relative(dir, path).split(sep).join("/");
    const body = readFileSync(path);
    const contentType = CONTENT_TYPES[extname(path)] ?? "application/octet-stream";
    const compressible = body.length >= COMPRESS_FROM_BYTES && /^(text\/|application\/json|image\/svg)/.test(contentType);
    files.set(urlPath, {
      body,
      gzip: compressible ? gzipSync(body, { level: 9 }) : undefined,
      brotli: compressible ? brotliCompressSync(body) : undefined,
      contentType,
      cacheControl: urlPath.startsWith(HASHED_ASSETS) ? FOREVER : ALWAYS_REVALIDATE,
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
    });
  }
  return files;
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      yield* walk(path);
    } else {
      yield path;
    }
  }
}

/**
 * GET and HEAD of the console's files; any other path of the app (no file extension, not an RPC
 * namespace) gets index.html, whose router shows the view. Anything else is 404, as before.
 */
export function createConsoleHandler(files: ReadonlyMap<string, ConsoleFile>): NodeHandler {
  const index = files.get("/index.html");
  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] as string;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(404);
      res.end();
      return;
    }
    const file = files.get(path) ?? (isAppRoute(path) ? index : undefined);
    if (file === undefined) {
      const notBuilt = index === undefined && isAppRoute(path);
      res.writeHead(notBuilt ? 503 : 404, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(notBuilt ? "The console is not built: run `npm run build` and restart execution-service.\n" : "");
      return;
    }
    const headers: Record<string, string> = {
      "Content-Type": file.contentType,
      "Cache-Control": file.cacheControl,
      ETag: file.etag,
      Vary: "Accept-Encoding",
      "Content-Security-Policy": CONSOLE_CSP,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      "X-Frame-Options": "DENY",
    };
    if (req.headers["if-none-match"] === file.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const accepted = String(req.headers["accept-encoding"] ?? "");
    let body = file.body;
    if (file.brotli && /\bbr\b/.test(accepted)) {
      body = file.brotli;
      headers["Content-Encoding"] = "br";
    } else if (file.gzip && /\bgzip\b/.test(accepted)) {
      body = file.gzip;
      headers["Content-Encoding"] = "gzip";
    }
    headers["Content-Length"] = String(body.length);
    res.writeHead(200, headers);
    if (req.method === "HEAD") {
      res.end();
    } else {
      res.end(body);
    }
  };
}

/**
 * A path the app's router may own: no file extension in its last segment, and not under an RPC
 * namespace ("/rgrid.v1.ExecutionService/…", "/grpc.health.v1.Health/…"), whose first segment
 * always has a dot.
 */
function isAppRoute(path: string): boolean {
  const segments = path.split("/");
  const first = segments[1] ?? "";
  const last = segments[segments.length - 1] ?? "";
  return !first.includes(".") && !last.includes(".");
}
