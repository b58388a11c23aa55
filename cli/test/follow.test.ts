import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst } from "./harness";

/** A queued execution whose run prints out-1, err-2, out-3, then out-4 as it completes. */
function fakeWithScriptedRun(): { fake: FakeExecutionService; executionId: string } {
  const fake = new FakeExecutionService();
  const execution = fake.seed({ status: ExecutionStatus.QUEUED });
  fake.scriptedRun = {
    lines: [
      [LogEntry_Stream.STDOUT, "out-1"],
      [LogEntry_Stream.STDERR, "err-2"],
      [LogEntry_Stream.STDOUT, "out-3"],
    ],
    finalLine: [LogEntry_Stream.STDOUT, "out-4"],
    status: ExecutionStatus.COMPLETED,
    exitCode: 0,
  };
  fake.followPageSize = 1;
  return { fake, executionId: execution.id };
}

/**
 * Serves the fake over a real port; the first `cuts` FollowLogs responses are cut off at the
 * socket right after their first message, as a dying proxy or network would.
 */
async function serveWithCutStreams(fake: FakeExecutionService, cuts: number): Promise<{ url: string; server: Server }> {
  const adapter = connectNodeAdapter({ routes: (router) => fake.routes(router) });
  let cutsLeft = cuts;
  const server = createServer((request, response) => {
    if (request.url?.endsWith("/FollowLogs") && cutsLeft > 0) {
      cutsLeft--;
      const write = response.write.bind(response) as (...args: unknown[]) => boolean;
      response.write = ((...args: unknown[]) => {
        write(...args);
        // Flush what was written, then close mid-response; later writes of the handler go nowhere.
        request.socket.end();
        response.write = (() => true) as typeof response.write;
        response.end = (() => response) as typeof response.end;
        return true;
      }) as typeof response.write;
    }
    adapter(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe("rgrid logs --follow", () => {
  it("prints lines live from the stream, stdout to stdout and stderr to stderr, and exits 0", async () => {
    const { fake, executionId } = fakeWithScriptedRun();

    const result = await runAgainst(fake, ["logs", executionId, "--follow"]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual(["out-1", "out-3", "out-4"]);
    expect(result.stderr).toEqual(["err-2"]);
    expect(fake.followRequests.map((request) => request.afterSequence)).toEqual([0n]);
    expect(result.sleeps).toEqual([]);
  });

  it("exits 0 after following an execution that failed: the logs were shown", async () => {
    const { fake, executionId } = fakeWithScriptedRun();
    fake.scriptedRun = { ...fake.scriptedRun!, status: ExecutionStatus.FAILED, exitCode: 4 };

    const result = await runAgainst(fake, ["logs", executionId, "--follow"]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual(["out-1", "out-3", "out-4"]);
  });

  it("resumes a dropped stream after the last line printed: no gap, no duplicate", async () => {
    const { fake, executionId } = fakeWithScriptedRun();
    fake.followDrops = 2;

    const result = await runAgainst(fake, ["logs", executionId, "--follow"]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual(["out-1", "out-3", "out-4"]);
    expect(result.stderr).toEqual([
      "Connection lost. Retrying... (attempt 2/5)",
      "err-2",
      "Connection lost. Retrying... (attempt 2/5)",
    ]);
    expect(fake.followRequests.map((request) => request.afterSequence)).toEqual([0n, 1n, 2n]);
    // A stream that delivered lines resets the count, so each drop waits the first delay again.
    expect(result.sleeps).toEqual([200, 200]);
  });

  it("resumes after the socket is cut mid-response over a real connection", async () => {
    const { fake, executionId } = fakeWithScriptedRun();
    const { url, server } = await serveWithCutStreams(fake, 2);
    try {
      const result = await runAgainst(fake, ["logs", executionId, "--follow"], { serverUrl: url });

      expect(result.exitCode).toBe(0);
      expect(result.stdout).toEqual(["out-1", "out-3", "out-4"]);
      expect(result.stderr.filter((line) => line !== "Connection lost. Retrying... (attempt 2/5)")).toEqual(["err-2"]);
      expect(result.stderr.length).toBe(3);
      const resumedFrom = fake.followRequests.map((request) => request.afterSequence);
      expect(resumedFrom).toHaveLength(3);
      expect(resumedFrom[0]).toBe(0n);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("gives up with exit 3 when the stream cannot be opened again", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.RUNNING });
    fake.outages.set("followLogs", 10);

    const result = await runAgainst(fake, ["logs", execution.id, "--follow"]);

    expect(result.exitCode).toBe(3);
    expect(result.sleeps).toEqual([200, 400, 800, 1600]);
    expect(result.stderr.at(-1)).toMatch(/^Error: cannot reach the rgrid server/);
  });

  it("prints one JSON array at the end with --json", async () => {
    const { fake, executionId } = fakeWithScriptedRun();

    const result = await runAgainst(fake, ["logs", executionId, "--follow", "--json"]);

    expect(result.exitCode).toBe(0);
    const views = JSON.parse(result.stdout.join("\n")) as Array<{ sequence: number; stream: string; line: string }>;
    expect(views.map((view) => [view.sequence, view.stream, view.line])).toEqual([
      [1, "stdout", "out-1"],
      [2, "stderr", "err-2"],
      [3, "stdout", "out-3"],
      [4, "stdout", "out-4"],
    ]);
  });

  it("exits 1 with a plain sentence for an unknown execution", async () => {
    const result = await runAgainst(new FakeExecutionService(), ["logs", "exec_00000000000000000000000000000000", "--follow"]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toEqual([
      "Error: execution exec_00000000000000000000000000000000 not found. Check the id with 'rgrid list'.",
    ]);
  });
});
