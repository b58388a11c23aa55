import { silentLogger } from "@rgrid/common";
import { LogEntry_Stream } from "@rgrid/proto";
import type { LogEntry } from "@rgrid/proto";
import { createLogShipper } from "../src/log-shipper";

describe("createLogShipper", () => {
  it("numbers entries from 1 and sends a full batch at once, the rest after the flush interval", async () => {
    const batches: LogEntry[][] = [];
    const shipper = createLogShipper({
      send: async (entries) => {
        batches.push(entries);
      },
      logger: silentLogger,
      flushIntervalMs: 50,
      maxBatchEntries: 3,
    });
    shipper.append("stdout", "a");
    shipper.append("stderr", "b");
    expect(batches).toEqual([]);
    shipper.append("system", "c");
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches.map((batch) => batch.map((entry) => entry.line))).toEqual([["a", "b", "c"]]);

    shipper.append("stdout", "d");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(batches.map((batch) => batch.map((entry) => entry.line))).toEqual([["a", "b", "c"], ["d"]]);

    await shipper.close();
    const entries = batches.flat();
    expect(entries.map((entry) => [entry.sequence, entry.stream])).toEqual([
      [1n, LogEntry_Stream.STDOUT],
      [2n, LogEntry_Stream.STDERR],
      [3n, LogEntry_Stream.SYSTEM],
      [4n, LogEntry_Stream.STDOUT],
    ]);
  });

  it("keeps order with one call in flight and delivers everything on close", async () => {
    const delivered: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const shipper = createLogShipper({
      send: async (entries) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        delivered.push(...entries.map((entry) => entry.line));
        inFlight--;
      },
      logger: silentLogger,
      flushIntervalMs: 1,
      maxBatchEntries: 7,
    });
    const expected = Array.from({ length: 100 }, (_, i) => `line ${i}`);
    for (const line of expected) {
      shipper.append("stdout", line);
      if (Number(line.slice(5)) % 10 === 0) {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    await shipper.close();
    expect(delivered).toEqual(expected);
    expect(maxInFlight).toBe(1);
  });

  it("finish hands back the last batch for the report, after what is in flight and what exceeds one batch is sent", async () => {
    const sent: string[][] = [];
    let releaseFirstCall: () => void = () => undefined;
    const firstCall = new Promise<void>((resolve) => (releaseFirstCall = resolve));
    const shipper = createLogShipper({
      send: async (entries) => {
        if (sent.length === 0) {
          await firstCall;
        }
        sent.push(entries.map((entry) => entry.line));
      },
      logger: silentLogger,
      flushIntervalMs: 1,
      maxBatchEntries: 3,
    });
    for (const line of ["a", "b", "c", "d", "e", "f", "g", "h"]) {
      shipper.append("stdout", line);
    }
    const finishing = shipper.finish();
    releaseFirstCall();
    const last = await finishing;
    // "a b c" was in flight; "d e f" exceeded one batch; "g h" is left for the report.
    expect(sent).toEqual([["a", "b", "c"], ["d", "e", "f"]]);
    expect(last.map((entry) => [entry.sequence, entry.line])).toEqual([[7n, "g"], [8n, "h"]]);
    shipper.append("stdout", "too late");
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent).toHaveLength(2);
    expect(await createLogShipper({ send: async () => undefined, logger: silentLogger }).finish()).toEqual([]);
  });

  it("once held for the report, keeps the last lines for finish, or sends them when the hold runs out", async () => {
    const batches: string[][] = [];
    const newShipper = () =>
      createLogShipper({
        send: async (entries) => {
          batches.push(entries.map((entry) => entry.line));
        },
        logger: silentLogger,
        flushIntervalMs: 10,
      });
    const reported = newShipper();
    reported.append("stdout", "last words");
    reported.holdForReport(1_000);
    reported.append("system", "a note after the output");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(batches).toEqual([]);
    expect((await reported.finish()).map((entry) => entry.line)).toEqual(["last words", "a note after the output"]);
    expect(batches).toEqual([]);

    const lingering = newShipper();
    lingering.append("stdout", "printed before closing its output");
    lingering.holdForReport(50);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(batches).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(batches).toEqual([["printed before closing its output"]]);
    lingering.append("stdout", "and after");
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(batches).toEqual([["printed before closing its output"], ["and after"]]);
    expect(await lingering.finish()).toEqual([]);
  });

  it("stops sending after a batch is refused for good, and still closes", async () => {
    let calls = 0;
    const shipper = createLogShipper({
      send: async () => {
        calls++;
        throw new Error("execution not found");
      },
      logger: silentLogger,
      maxBatchEntries: 2,
    });
    shipper.append("stdout", "a");
    shipper.append("stdout", "b");
    shipper.append("stdout", "c");
    await shipper.close();
    expect(calls).toBe(1);
  });

  it("holds at most maxPendingEntries while delivery lags, and says how many lines it dropped", async () => {
    const delivered: LogEntry[] = [];
    let releaseFirstCall: () => void = () => undefined;
    const firstCall = new Promise<void>((resolve) => (releaseFirstCall = resolve));
    let calls = 0;
    const shipper = createLogShipper({
      send: async (entries) => {
        if (calls++ === 0) {
          await firstCall;
        }
        delivered.push(...entries);
      },
      logger: silentLogger,
      flushIntervalMs: 1,
      maxBatchEntries: 2,
      maxPendingEntries: 5,
    });
    // "0" and "1" go out as the first batch, which stalls; four more fit, the rest are dropped.
    for (let line = 0; line < 20; line++) {
      shipper.append("stdout", String(line));
    }
    await new Promise((resolve) => setImmediate(resolve));
    releaseFirstCall();
    await new Promise((resolve) => setTimeout(resolve, 20));
    shipper.append("stdout", "after");
    await shipper.close();

    expect(delivered.map((entry) => entry.line)).toEqual([
      "0",
      "1",
      "2",
      "3",
      "4",
      "5",
      "14 log lines dropped: the execution service did not accept them fast enough",
      "after",
    ]);
    expect(delivered[6].stream).toBe(LogEntry_Stream.SYSTEM);
    expect(delivered.map((entry) => entry.sequence)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  });

  it("holds at most maxPendingChars of long lines while delivery lags", async () => {
    const delivered: string[] = [];
    let releaseFirstCall: () => void = () => undefined;
    const firstCall = new Promise<void>((resolve) => (releaseFirstCall = resolve));
    let calls = 0;
    const shipper = createLogShipper({
      send: async (entries) => {
        if (calls++ === 0) {
          await firstCall;
        }
        delivered.push(...entries.map((entry) => entry.line));
      },
      logger: silentLogger,
      flushIntervalMs: 1,
      maxBatchEntries: 1,
      maxPendingChars: 2500,
    });
    // The first line goes out and stalls; two more fit in 2,500 characters, the rest are dropped.
    const long = (n: number) => String(n).repeat(1000);
    for (let line = 0; line < 10; line++) {
      shipper.append("stdout", long(line));
    }
    await new Promise((resolve) => setImmediate(resolve));
    releaseFirstCall();
    await shipper.close();
    expect(delivered).toEqual([long(0), long(1), long(2), "7 log lines dropped: the execution service did not accept them fast enough"]);
  });

  it("sends a batch at once when its lines reach the size bound", async () => {
    const batches: string[][] = [];
    const shipper = createLogShipper({
      send: async (entries) => {
        batches.push(entries.map((entry) => entry.line));
      },
      logger: silentLogger,
      flushIntervalMs: 60_000,
      maxBatchChars: 10,
    });
    shipper.append("stdout", "12345");
    shipper.append("stdout", "67890");
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([["12345", "67890"]]);
    shipper.append("stdout", "x");
    await shipper.close();
    expect(batches).toEqual([["12345", "67890"], ["x"]]);
  });
});
