import { request as httpsRequest } from "node:https";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { silentLogger } from "@rgrid/common";
import type { RunningServer } from "@rgrid/common";
import { createSelfSignedCertificate, opensslAvailable } from "../../../packages/common/test/self-signed";
import { issueApiKey } from "../src/accounts";
import { CONSOLE_CSP, loadConsoleFiles } from "../src/console";
import type { ConsoleFile } from "../src/console";
import { Session } from "../src/db/entities";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { createExecutionServer } from "../src/server";
import type { ExecutionServerDeps } from "../src/server";
import { FakeStorage } from "./fake-storage";
import { TEST_SERVICE_SETTINGS } from "./harness";

// Over the wire, as a browser meets execution-service: the console's files, the session cookie
// and who may use it, and CORS for pages on other origins.

const ALLOWED_ORIGIN = "http://app.test:5173";
const APP_SCRIPT = `console.log(${JSON.stringify("x".repeat(4000))});\n`;

let db: Database;
let apiKey: string;
let consoleDir: string;
let consoleFiles: Map<string, ConsoleFile>;
const servers: RunningServer[] = [];

beforeAll(async () => {
  consoleDir = await mkdtemp(join(tmpdir(), "rgrid-console-"));
  await mkdir(join(consoleDir, "assets"));
  await writeFile(join(consoleDir, "index.html"), '<!doctype html><script type="module" src="/assets/app-1a2b3c.js"></script>');
  await writeFile(join(consoleDir, "assets", "app-1a2b3c.js"), APP_SCRIPT);
  await writeFile(join(consoleDir, "assets", "app-1a2b3c.css"), "body{margin:0}");
  consoleFiles = loadConsoleFiles(consoleDir);
});
afterAll(async () => {
  await rm(consoleDir, { recursive: true, force: true });
});

beforeEach(async () => {
  db = await openDatabase({ dialect: "sqlite", file: ":memory:" });
  await db.migrate();
  apiKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(1000)));
  await db.close();
});

async function serve(overrides: Partial<ExecutionServerDeps> = {}): Promise<string> {
  const server = await createExecutionServer({
    db,
    storage: new FakeStorage().client(),
    ...TEST_SERVICE_SETTINGS,
    logger: silentLogger,
    consoleFiles,
    corsOrigins: [ALLOWED_ORIGIN],
    ...overrides,
  }).listen(0, "127.0.0.1");
  servers.push(server);
  return server.url;
}

/** A Connect JSON call, as a browser page's fetch sends it. */
function call(url: string, method: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/rgrid.v1.ExecutionService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function signIn(url: string): Promise<{ cookie: string; setCookie: string }> {
  const response = await call(url, "CreateSession", { apiKey }, { origin: url });
  expect(response.status).toBe(200);
  const setCookie = response.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";", 1)[0] as string, setCookie };
}

describe("the console's files", () => {
  test("the app's routes get index.html with a strict CSP and no caching", async () => {
    const url = await serve();
    for (const path of ["/", "/executions/exec_0123", "/batches/batch_1?status=failed", "/sign-in"]) {
      const response = await fetch(url + path);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      expect(response.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await response.text()).toContain("/assets/app-1a2b3c.js");
    }
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain("unsafe");
  });

  test("hashed assets are cached for a year, compressed when asked, and revalidate by ETag", async () => {
    const url = await serve();
    const plain = await fetch(`${url}/assets/app-1a2b3c.js`, { headers: { "accept-encoding": "identity" } });
    expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(plain.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await plain.text()).toBe(APP_SCRIPT);

    const raw = await rawGet(`${url}/assets/app-1a2b3c.js`, { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(raw.body).toString("utf8")).toBe(APP_SCRIPT);
    expect(raw.body.length).toBeLessThan(APP_SCRIPT.length / 4);

    const etag = plain.headers.get("etag") ?? "";
    const again = await fetch(`${url}/assets/app-1a2b3c.js`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${url}/assets/app-1a2b3c.css`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  test("missing files and RPC paths are never answered with the app", async () => {
    const url = await serve();
    expect((await fetch(`${url}/assets/missing-000.js`)).status).toBe(404);
    expect((await fetch(`${url}/favicon.ico`)).status).toBe(404);
    expect((await fetch(`${url}/grpc.health.v1.Health/Nope`)).status).toBe(404);
    const rpcByGet = await fetch(`${url}/rgrid.v1.ExecutionService/ListExecutions`);
    expect(rpcByGet.status).not.toBe(200);
    expect(rpcByGet.headers.get("content-type") ?? "").not.toContain("text/html");
    expect((await fetch(`${url}/`, { method: "DELETE" })).status).toBe(404);
    // RPCs still answer on the same port.
    const listed = await call(url, "ListExecutions", {}, { authorization: `Bearer ${apiKey}` });
    expect(listed.status).toBe(200);
  });

  test("HEAD has the headers and no body", async () => {
    const url = await serve();
    const response = await rawGet(`${url}/`, {}, "HEAD");
    expect(response.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(response.body.length).toBe(0);
  });

  test("a deployment can turn the console off, and an unbuilt one says so", async () => {
    const off = await serve({ consoleFiles: undefined });
    expect((await fetch(`${off}/`)).status).toBe(404);
    const unbuilt = await serve({ consoleFiles: new Map() });
    const response = await fetch(`${unbuilt}/executions/x`);
    expect(response.status).toBe(503);
    expect(await response.text()).toContain("npm run build");
  });
});

describe("console sessions", () => {
  test("signing in sets an httpOnly SameSite=Strict cookie naming a session stored only as a hash", async () => {
    const url = await serve();
    const { cookie, setCookie } = await signIn(url);
    expect(setCookie).toMatch(/^rgrid_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=604800; HttpOnly; SameSite=Strict$/);
    const token = cookie.split("=")[1] as string;
    const [session] = await db.fork().find(Session, {});
    expect(session?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(session)).not.toContain(token);

    const me = await call(url, "GetSession", {}, { cookie, origin: url });
    expect(await me.json()).toMatchObject({ session: { accountName: "alice" } });
    const listed = await call(url, "ListExecutions", {}, { cookie, origin: url, "sec-fetch-site": "same-origin" });
    expect(listed.status).toBe(200);
    // Clients that are not browsers send no Origin.
    expect((await call(url, "ListExecutions", {}, { cookie })).status).toBe(200);
  });

  test("a cookie from a foreign origin or another site is refused, and a bad Bearer key never falls back to it", async () => {
    const url = await serve();
    const { cookie } = await signIn(url);
    const foreign = await call(url, "ListExecutions", {}, { cookie, origin: "http://evil.test" });
    expect(await foreign.json()).toMatchObject({ code: "permission_denied" });
    // A page on an origin allowed for API keys gets no cookie rights either.
    const corsOrigin = await call(url, "ListExecutions", {}, { cookie, origin: ALLOWED_ORIGIN });
    expect(await corsOrigin.json()).toMatchObject({ code: "permission_denied" });
    const crossSite = await call(url, "ListExecutions", {}, { cookie, "sec-fetch-site": "cross-site" });
    expect(await crossSite.json()).toMatchObject({ code: "permission_denied" });
    const wrongKey = await call(url, "ListExecutions", {}, { cookie, authorization: "Bearer rgrid_wrong" });
    expect(await wrongKey.json()).toMatchObject({ code: "unauthenticated" });
    const foreignSignIn = await call(url, "CreateSession", { apiKey }, { origin: "http://evil.test" });
    expect(await foreignSignIn.json()).toMatchObject({ code: "permission_denied" });
    expect(foreignSignIn.headers.get("set-cookie")).toBeNull();
  });

  test("signing out revokes the session and clears the cookie", async () => {
    const url = await serve();
    const { cookie } = await signIn(url);
    const out = await call(url, "DeleteSession", {}, { cookie, origin: url });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toMatch(/^rgrid_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/);
    const after = await call(url, "GetSession", {}, { cookie, origin: url });
    expect(await after.json()).toMatchObject({ code: "unauthenticated" });
  });

  test("a wrong API key does not sign in", async () => {
    const url = await serve();
    const response = await call(url, "CreateSession", { apiKey: "rgrid_not-a-key" }, { origin: url });
    expect(await response.json()).toMatchObject({ code: "unauthenticated" });
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  test("behind a proxy that ends TLS, the forwarded scheme makes the cookie Secure and the https origin its own", async () => {
    const url = await serve();
    const httpsOrigin = url.replace("http:", "https:");
    const response = await call(url, "CreateSession", { apiKey }, { origin: httpsOrigin, "x-forwarded-proto": "https" });
    expect(response.headers.get("set-cookie")).toMatch(/; Secure$/);
    const cookie = (response.headers.get("set-cookie") ?? "").split(";", 1)[0] as string;
    const listed = await call(url, "ListExecutions", {}, { cookie, origin: httpsOrigin, "x-forwarded-proto": "https" });
    expect(listed.status).toBe(200);
  });

  (opensslAvailable ? test : test.skip)("under TLS the cookie is Secure", async () => {
    const certificate = await createSelfSignedCertificate();
    try {
      const url = await serve({ tls: { cert: certificate.cert, key: certificate.key } });
      const response = await rawGet(`${url}/rgrid.v1.ExecutionService/CreateSession`, { "content-type": "application/json", origin: url }, "POST", JSON.stringify({ apiKey }), certificate.cert);
      expect(String(response.headers["set-cookie"])).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await certificate.remove();
    }
  });
});

describe("reads over Connect GET", () => {
  test("side-effect-free methods answer GET with the message in the query, writes do not", async () => {
    const url = await serve();
    const get = (method: string, message: unknown) =>
      fetch(`${url}/rgrid.v1.ExecutionService/${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
    const listed = await get("ListExecutions", { pageSize: 5 });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({});
    const missing = await get("GetExecution", { executionId: `exec_${"0".repeat(32)}` });
    expect(await missing.json()).toMatchObject({ code: "not_found" });
    expect(await (await get("GetSession", {})).json()).toMatchObject({ session: { accountName: "alice" } });
    const write = await get("CancelExecution", { executionId: `exec_${"0".repeat(32)}` });
    expect(write.status).not.toBe(200);
  });
});

describe("CORS for pages on other origins", () => {
  test("a listed origin's preflight is answered with the Connect and gRPC-Web headers plus Authorization", async () => {
    const url = await serve();
    const preflight = await fetch(`${url}/rgrid.v1.ExecutionService/ListExecutions`, {
      method: "OPTIONS",
      headers: { origin: ALLOWED_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,x-grpc-web" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const header of ["authorization", "content-type", "connect-protocol-version", "x-grpc-web", "x-user-agent", "grpc-timeout"]) {
      expect(allowed).toContain(header);
    }
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect(preflight.headers.get("access-control-allow-credentials")).toBeNull();
    expect(preflight.headers.get("vary")).toContain("Origin");
  });

  test("a listed origin's call carries the allow and expose headers; an unlisted origin gets none", async () => {
    const url = await serve();
    const listed = await call(url, "ListExecutions", {}, { origin: ALLOWED_ORIGIN, authorization: `Bearer ${apiKey}` });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect((listed.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("grpc-status");

    for (const origin of ["http://app.test:5174", "http://evil.test", "null"]) {
      const preflight = await fetch(`${url}/rgrid.v1.ExecutionService/ListExecutions`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST" },
      });
      expect(preflight.status).toBe(403);
      expect([...preflight.headers.keys()].filter((name) => name.startsWith("access-control-"))).toEqual([]);
      const unlisted = await call(url, "ListExecutions", {}, { origin, authorization: `Bearer ${apiKey}` });
      expect([...unlisted.headers.keys()].filter((name) => name.startsWith("access-control-"))).toEqual([]);
    }
  });

  test("without RGRID_CORS_ORIGINS no origin is allowed", async () => {
    const url = await serve({ corsOrigins: [] });
    const preflight = await fetch(`${url}/rgrid.v1.ExecutionService/ListExecutions`, {
      method: "OPTIONS",
      headers: { origin: ALLOWED_ORIGIN, "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });
});

/** A request through node:http(s), to see the bytes as sent (fetch decompresses by itself). */
async function rawGet(
  url: string,
  headers: Record<string, string>,
  method = "GET",
  body?: string,
  ca?: Buffer,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const { request } = url.startsWith("https:") ? { request: httpsRequest } : await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
