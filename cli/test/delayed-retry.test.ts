import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus } from "@rgrid/proto";
import { localTime } from "../src/present";
import { parseDelay, parseStartTime } from "../src/start-times";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst } from "./harness";

/**
 * Runs `code` in a node process in another time zone, with the built start-times.js and
 * present.js as `startTimes` and `present`, and returns what it prints. A child process because
 * jest's process.env is a copy: setting TZ there does not reach the clock.
 */
function inTimeZone(zone: string, code: string): string {
  const dist = join(__dirname, "..", "dist");
  const preamble =
    `const startTimes = require(${JSON.stringify(join(dist, "start-times.js"))});` +
    `const present = require(${JSON.stringify(join(dist, "present.js"))});`;
  return execFileSync(process.execPath, ["-e", preamble + code], { env: { ...process.env, TZ: zone }, encoding: "utf8" }).trim();
}

describe("--in: a delay", () => {
  it.each([
    ["30s", 30_000],
    ["10m", 600_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["7d", 604_800_000],
  ])("reads %s", (text, ms) => {
    expect(parseDelay(text)).toBe(ms);
  });

  it.each(["", "10", "10x", "-5m", "1.5h", "m", "10 m", "0s", "0m0s", "8d", "169h"])("refuses %j", (text) => {
    expect(() => parseDelay(text)).toThrow(/30s, 10m, 2h, 1d/);
  });
});

describe("--at: a time", () => {
  const now = new Date("2025-03-01T10:00:00Z");

  /** What parseStartTime makes of each text in Berlin, one process for all. */
  const readInBerlin = (texts: string[]): string[] =>
    inTimeZone(
      "Europe/Berlin",
      `for (const text of ${JSON.stringify(texts)}) console.log(startTimes.parseStartTime(text, new Date("${now.toISOString()}")).toISOString())`,
    ).split("\n");

  it("reads HH:MM as local time today, or tomorrow once it has passed", () => {
    // 10:00 UTC is 11:00 in Berlin.
    expect(readInBerlin(["12:30", "09:15", "11:00"])).toEqual([
      "2025-03-01T11:30:00.000Z",
      "2025-03-02T08:15:00.000Z",
      "2025-03-02T10:00:00.000Z",
    ]);
  });

  it("reads ISO 8601, local without an offset, as given with one", () => {
    expect(readInBerlin(["2025-03-01T14:30", "2025-03-01 14:30:15", "2025-03-01T14:30:00Z", "2025-03-01T14:30:00.250-05:00"])).toEqual([
      "2025-03-01T13:30:00.000Z",
      "2025-03-01T13:30:15.000Z",
      "2025-03-01T14:30:00.000Z",
      "2025-03-01T19:30:00.250Z",
    ]);
  });

  it("refuses a time in the past, more than 7 days ahead, or that does not exist", () => {
    expect(() => parseStartTime("2025-03-01T09:59:59Z", now)).toThrow("2025-03-01T09:59:59Z is in the past");
    expect(() => parseStartTime("2025-03-08T10:00:01Z", now)).toThrow("more than 7 days from now");
    for (const text of ["2025-02-30T10:00", "2025-03-01T24:00", "25:00", "12:60", "tomorrow", "1740823200", "2025-03-02"]) {
      expect(() => parseStartTime(text, now)).toThrow(/HH:MM .* ISO 8601/);
    }
  });

  it("shows a time in local time with its offset", () => {
    const show = (zone: string) =>
      inTimeZone(zone, `console.log(present.localTime({ seconds: BigInt(Date.parse("2025-03-01T11:30:00Z") / 1000), nanos: 0 }))`);
    expect(show("Europe/Berlin")).toBe("2025-03-01 12:30:00 +01:00");
    expect(show("America/St_Johns")).toBe("2025-03-01 08:00:00 -03:30");
    expect(show("UTC")).toBe("2025-03-01 11:30:00 +00:00");
  });
});

describe("rgrid retry --in / --at", () => {
  it("sends --in as a delay, for the server's clock, and says until when the retry is queued", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });

    const result = await runAgainst(fake, ["retry", original.id, "--in", "10m"]);

    expect(result.exitCode).toBe(0);
    const request = fake.retryRequests[0]!;
    expect(request.queuedUntil.case).toBe("delay");
    expect(request.queuedUntil.value).toMatchObject({ seconds: 600n, nanos: 0 });
    const retry = fake.executions.get(original.retriedAs[0]!)!;
    expect(result.stdout).toEqual([
      `Retry started: ${retry.id}`,
      `Original: ${original.id}`,
      "Status: queued",
      `Queued until ${localTime(retry.notBefore!)}`,
      "",
      `Check status: rgrid status ${retry.id}`,
      `View logs: rgrid logs ${retry.id}`,
    ]);
  });

  it("sends --at as that time, and rgrid status shows it while the retry waits", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });
    const now = new Date();
    const at = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 3_600_000);

    const result = await runAgainst(fake, ["retry", original.id, "--at", at.toISOString()], { now });

    expect(result.exitCode).toBe(0);
    const request = fake.retryRequests[0]!;
    expect(request.queuedUntil.case).toBe("notBefore");
    expect(timestampDate(request.queuedUntil.value as never).getTime()).toBe(at.getTime());
    const line = `Queued until ${localTime(timestampFromDate(at))}`;
    expect(result.stdout).toContain(line);

    const retryId = original.retriedAs[0]!;
    expect((await runAgainst(fake, ["status", retryId], { now })).stdout).toContain(line);
    // Once the time has come the line goes: the retry is queued like any other.
    const later = await runAgainst(fake, ["status", retryId], { now: new Date(at.getTime() + 1) });
    expect(later.stdout.some((text) => text.startsWith("Queued until"))).toBe(false);
  });

  it("says nothing of a queue time for a retry without one", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(fake.retryRequests[0]!.queuedUntil.case).toBeUndefined();
    expect(result.stdout.some((text) => text.startsWith("Queued until"))).toBe(false);
  });

  it.each([
    [["--in", "10x"], "option '--in <delay>' argument '10x' is invalid. expected a delay such as 30s, 10m, 2h, 1d"],
    [["--in", "8d"], "a retry can wait at most 7 days"],
    [["--at", "2020-01-01T00:00:00Z"], "2020-01-01T00:00:00Z is in the past; give a later time, or a delay with --in."],
    [["--at", "noon"], "expected a time as HH:MM"],
    [["--in", "10m", "--at", "12:00"], "option '--in <delay>' cannot be used with option '--at <time>'"],
  ])("refuses %j as a usage error, sending nothing", async (flags, message) => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });

    const result = await runAgainst(fake, ["retry", original.id, ...flags]);

    expect(result.exitCode).toBe(2);
    expect(result.stderr.join("\n")).toContain(message);
    expect(fake.retryRequests).toHaveLength(0);
  });

  it("refuses --in with --batch: a batch retry starts at once", async () => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, ["retry", "--batch", `batch_${"a".repeat(32)}`, "--in", "5m"]);

    expect(result.exitCode).toBe(2);
    expect(result.stderr.join("\n")).toContain("--in and --at delay the retry of one execution");
  });
});
