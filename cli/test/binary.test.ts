// The built entry point as users run it: real process, real transport, real exit codes.
// bin/rgrid.js runs the bundle cli/dist/rgrid.cjs, which `npm test` (npm run compile) builds
// before jest; the module-level checks below run the compiled modules (cli/dist/main.js).
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ExecutionStatus } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { temporaryDirectory } from "./harness";

const MAIN = join(__dirname, "..", "dist", "main.js");
const BIN = join(__dirname, "..", "bin", "rgrid.js");
const BUNDLE = join(__dirname, "..", "dist", "rgrid.cjs");

interface Finished {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function runBinary(args: string[], env: Record<string, string>): Promise<Finished> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env } }, (error, stdout, stderr) => {
      const exitCode = error ? Number((error as { code?: unknown }).code) : 0;
      resolve({ exitCode, stdout, stderr });
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the rgrid binary", () => {
  let home: { path: string; remove: () => Promise<void> };
  beforeAll(() => {
    for (const built of [MAIN, BUNDLE]) {
      if (!existsSync(built)) {
        throw new Error(`${built} is missing: build first with 'npm run compile'`);
      }
    }
  });
  beforeEach(async () => {
    home = await temporaryDirectory();
  });
  afterEach(() => home.remove());

  it("exits 3 with a plain message and no stack trace when the server cannot be reached", async () => {
    const port = await closedPort();
    const result = await runBinary(["retry", "exec_0123456789abcdef0123456789abcdef"], {
      HOME: home.path,
      RGRID_API_URL: `http://127.0.0.1:${port}`,
      RGRID_API_KEY: "some-key",
      RGRID_RETRY_DELAY_MS: "1",
    });

    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      [2, 3, 4, 5].map((n) => `Connection lost. Retrying... (attempt ${n}/5)\n`).join("") +
        `Error: cannot reach the rgrid server at http://127.0.0.1:${port}: connection refused. ` +
        "Is it running? Start it with 'npm start' or set RGRID_API_URL.\n",
    );
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("lists its commands in --help", async () => {
    const result = await runBinary(["--help"], { HOME: home.path });

    expect(result.exitCode).toBe(0);
    for (const command of ["init", "run", "status", "logs", "list", "retry", "cancel", "download"]) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
    expect(result.stdout).toContain("RGRID_API_KEY");
  });

  it("keeps its compiled code in the user's cache directory and starts from it next time", async () => {
    const env = { HOME: home.path, XDG_CACHE_HOME: join(home.path, "cache") };
    const first = await runBinary(["--help"], env);
    const [cached, ...others] = readdirSync(join(home.path, "cache", "rgrid"));
    expect(others).toEqual([]);
    expect(cached).toMatch(/^compiled-[0-9a-f]{32}\.bin$/);
    const written = readFileSync(join(home.path, "cache", "rgrid", cached as string));

    const second = await runBinary(["--help"], env);

    expect(second).toEqual(first);
    expect(second.exitCode).toBe(0);
    // Accepted as it was: not written again.
    expect(readFileSync(join(home.path, "cache", "rgrid", cached as string)).equals(written)).toBe(true);
  });

  it("runs as usual with a damaged cache, which it replaces, or with none it can write", async () => {
    const env = { HOME: home.path, XDG_CACHE_HOME: join(home.path, "cache") };
    const expected = await runBinary(["--help"], env);
    const [cached] = readdirSync(join(home.path, "cache", "rgrid"));
    const path = join(home.path, "cache", "rgrid", cached as string);
    writeFileSync(path, "not V8's code cache");

    expect(await runBinary(["--help"], env)).toEqual(expected);
    expect(readFileSync(path, "utf8")).not.toBe("not V8's code cache");

    // The cache directory's place is taken by a file.
    const blocked = join(home.path, "blocked");
    writeFileSync(blocked, "");
    expect(await runBinary(["--help"], { HOME: home.path, XDG_CACHE_HOME: blocked })).toEqual(expected);
  });

  it("exits 2 on an unknown command", async () => {
    const result = await runBinary(["frobnicate"], { HOME: home.path });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^Error: unknown command 'frobnicate'/);
  });

  it("retries over HTTP/1.1 with the configured key as a bearer token", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED, errorMessage: "network unreachable" });
    const server = createServer(connectNodeAdapter({ routes: (router) => fake.routes(router) }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const configPath = join(home.path, "config.json");
      const init = await runBinary(["init", "--api-url", `http://127.0.0.1:${port}`, "--api-key", "file-key"], {
        HOME: home.path,
        RGRID_CONFIG: configPath,
      });
      expect(init.exitCode).toBe(0);

      const result = await runBinary(["retry", original.id], { HOME: home.path, RGRID_CONFIG: configPath });

      const retryId = original.retriedAs[0];
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(
        [
          `Retry started: ${retryId}`,
          `Original: ${original.id}`,
          "Original error: network unreachable",
          "Status: queued",
          "",
          `Check status: rgrid status ${retryId}`,
          `View logs: rgrid logs ${retryId}`,
          "",
        ].join("\n"),
      );
      expect(fake.authorizations).toEqual(["Bearer file-key"]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("what the binary loads", () => {
  // Loading modules is most of the CLI's start-up time; these pin which commands pay for what.
  // The child writes its module cache to fd 3 on exit, apart from the CLI's own output.
  function modulesLoadedBy(args: string[]): Promise<string[]> {
    const script =
      `process.argv.splice(1, process.argv.length, ${JSON.stringify(MAIN)}, ...${JSON.stringify(args)});` +
      `process.on("exit", () => require("node:fs").writeSync(3, JSON.stringify(Object.keys(require.cache))));` +
      `require(${JSON.stringify(MAIN)});`;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["-e", script], {
        env: { PATH: process.env.PATH ?? "", RGRID_API_KEY: "key", RGRID_API_URL: "http://127.0.0.1:1" },
        stdio: ["ignore", "ignore", "ignore", "pipe"],
      });
      let written = "";
      child.stdio[3]?.on("data", (chunk: Buffer) => (written += chunk.toString()));
      child.on("error", reject);
      child.on("close", () => resolve(JSON.parse(written) as string[]));
    });
  }

  it.each([[["--help"]], [["init", "--help"]], [["retry", "--help"]], [["cancel", "--help"]], [["download", "--help"]]])("%j loads neither protobuf nor Connect", async (args) => {
    const modules = await modulesLoadedBy(args);
    expect(modules.some((path) => path.includes("commander"))).toBe(true);
    expect(modules.filter((path) => /@bufbuild|@connectrpc/.test(path))).toEqual([]);
  });

  // The server is unreachable here, so the failure path runs too; it may load transfer.js to
  // recognise upload errors, which is why only the command modules are checked.
  it("retry loads Connect but not the run command or input planning", async () => {
    const modules = await modulesLoadedBy(["retry", "exec_00000000000000000000000000000000"]);
    expect(modules.some((path) => path.includes("@connectrpc"))).toBe(true);
    expect(modules.filter((path) => /[/\\](commands[/\\](run|download)|inputs|outputs)\.js$/.test(path))).toEqual([]);
  });

  it("download loads its own command but not the run command or input planning", async () => {
    const modules = await modulesLoadedBy(["download", "exec_00000000000000000000000000000000"]);
    expect(modules.some((path) => /[/\\]commands[/\\]download\.js$/.test(path))).toBe(true);
    expect(modules.filter((path) => /[/\\](commands[/\\]run|inputs)\.js$/.test(path))).toEqual([]);
  });
});
