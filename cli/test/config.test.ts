import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ExecutionStatus } from "@rgrid/proto";
import { readCliEnvironment } from "../src/config";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst, temporaryDirectory } from "./harness";

describe("configuration", () => {
  let home: { path: string; remove: () => Promise<void> };
  beforeEach(async () => {
    home = await temporaryDirectory();
  });
  afterEach(() => home.remove());

  it("reads RGRID_CONFIG, the API settings and the re-send policy from the environment", () => {
    const environment = readCliEnvironment(
      { RGRID_CONFIG: "/etc/rgrid.json", RGRID_API_URL: "http://x:1", RGRID_API_KEY: "k", RGRID_RETRY_ATTEMPTS: "2" },
      "/home/u",
    );
    expect(environment).toEqual({
      configPath: "/etc/rgrid.json",
      apiUrl: "http://x:1",
      apiKey: "k",
      resendPolicy: { attempts: 2, firstDelayMs: 200 },
    });
    expect(readCliEnvironment({}, "/home/u").configPath).toBe(join("/home/u", ".rgrid", "config.json"));
  });

  it("lets RGRID_API_URL and RGRID_API_KEY override the config file, and uses the file otherwise", async () => {
    const configPath = join(home.path, "config.json");
    await writeFile(configPath, JSON.stringify({ apiUrl: "http://from-file:1", apiKey: "file-key" }));
    const fake = new FakeExecutionService();
    const original = fake.seed();

    const fromFile = await runAgainst(fake, ["status", original.id], {
      environment: { configPath, apiUrl: undefined, apiKey: undefined },
    });
    const overridden = await runAgainst(fake, ["status", original.id], {
      environment: { configPath, apiUrl: "http://from-env:2", apiKey: "env-key" },
    });
    const keyOnly = await runAgainst(fake, ["status", original.id], {
      environment: { configPath, apiUrl: undefined, apiKey: "env-key" },
    });

    expect(fromFile.connections).toEqual([{ apiUrl: "http://from-file:1", apiKey: "file-key" }]);
    expect(overridden.connections).toEqual([{ apiUrl: "http://from-env:2", apiKey: "env-key" }]);
    expect(keyOnly.connections).toEqual([{ apiUrl: "http://from-file:1", apiKey: "env-key" }]);
    expect(fake.authorizations).toEqual(["Bearer file-key", "Bearer env-key", "Bearer env-key"]);
  });

  it("stops with exit 2 and says how to configure when no key is set anywhere", async () => {
    const fake = new FakeExecutionService();
    const result = await runAgainst(fake, ["list"], {
      environment: { configPath: join(home.path, "absent.json"), apiKey: undefined },
    });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toMatch(/^Error: no API key configured\. Run 'rgrid init --api-key <key>'.*npm start/);
    expect(fake.authorizations).toEqual([]);
  });

  it("reports a config file that is not JSON as a usage error", async () => {
    const configPath = join(home.path, "config.json");
    await writeFile(configPath, "{ not json");
    const result = await runAgainst(new FakeExecutionService(), ["list"], { environment: { configPath, apiKey: undefined } });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toEqual([`Error: the config file ${configPath} is not valid JSON. Fix it or run 'rgrid init' again.`]);
  });

  it("init writes the file owner-only, creating its directory, and keeps what it already held", async () => {
    const configPath = join(home.path, "nested", "dir", "config.json");
    const fake = new FakeExecutionService();

    const first = await runAgainst(fake, ["init", "--api-url", "http://grid:9000/", "--api-key", "secret-key"], {
      environment: { configPath },
    });
    const second = await runAgainst(fake, ["init", "--api-url", "http://other:1"], { environment: { configPath } });

    expect(first.exitCode).toBe(0);
    expect(first.stdout[0]).toBe(`Configuration written to ${configPath}`);
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(await readFile(configPath, "utf8"))).toEqual({ apiUrl: "http://other:1", apiKey: "secret-key" });
    expect((await stat(configPath)).mode & 0o777).toBe(0o600);
  });

  it("init refuses a malformed URL and a missing key with exit 2", async () => {
    const configPath = join(home.path, "config.json");
    const result = await runAgainst(new FakeExecutionService(), ["init", "--api-url", "ftp://nope"], {
      environment: { configPath },
    });

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(/RGRID_API_URL must be an http or https URL/);
    expect(result.stderr[1]).toMatch(/no API key configured/);
    await expect(stat(configPath)).rejects.toThrow();
  });

  it("init does not need a reachable server", async () => {
    const fake = new FakeExecutionService();
    fake.seed({ status: ExecutionStatus.RUNNING });
    const result = await runAgainst(fake, ["init", "--api-key", "k", "--json"], {
      environment: { configPath: join(home.path, "c.json") },
    });

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toEqual({ config_path: join(home.path, "c.json"), api_url: "http://127.0.0.1:7400" });
    expect(fake.authorizations).toEqual([]);
  });
});
