// Runs the CLI in-process against a FakeExecutionService and captures what it prints.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Transport } from "@connectrpc/connect";
import type { CliEnvironment, Connection } from "../src/config";
import { createServerTransport } from "../src/client";
import { runCli } from "../src/program";
import type { FakeExecutionService } from "./fake-execution-service";

export interface CliResult {
  exitCode: number;
  stdout: string[];
  stderr: string[];
  /** Delays the CLI asked to sleep, in order. */
  sleeps: number[];
  /** The connections the CLI resolved, in order. */
  connections: Connection[];
  /** What the status line showed, "" for each clear; stays empty unless `terminal` is set. */
  status: string[];
}

export interface RunOptions {
  cwd?: string;
  environment?: Partial<CliEnvironment>;
  /** Play stderr being a terminal, so the CLI gets a status line. */
  terminal?: boolean;
  /** Talk to a server listening here over the real transport instead of the fake in-process. */
  serverUrl?: string;
  /** What the CLI's clock says; the real time when unset. */
  now?: Date;
}

export async function runAgainst(
  fake: FakeExecutionService,
  argv: string[],
  options: RunOptions = {},
): Promise<CliResult> {
  const result: CliResult = { exitCode: -1, stdout: [], stderr: [], sleeps: [], connections: [], status: [] };
  const status = options.terminal
    ? { show: (text: string) => void result.status.push(text), clear: () => void result.status.push("") }
    : undefined;
  const createTransport = (connection: Connection): Transport => {
    result.connections.push(connection);
    return options.serverUrl === undefined
      ? fake.transport(connection.apiKey)
      : createServerTransport({ ...connection, apiUrl: options.serverUrl });
  };
  result.exitCode = await runCli(argv, {
    environment: {
      configPath: join(tmpdir(), "rgrid-cli-test-absent", "config.json"),
      apiUrl: "http://rgrid.test:8080",
      apiKey: "test-api-key",
      resendPolicy: { attempts: 5, firstDelayMs: 200 },
      ...options.environment,
    },
    output: { stdout: (line) => result.stdout.push(line), stderr: (line) => result.stderr.push(line), status },
    clock: {
      sleep: async (ms) => {
        result.sleeps.push(ms);
      },
      now: () => options.now ?? new Date(),
    },
    cwd: options.cwd ?? process.cwd(),
    createTransport,
    pollIntervalMs: 250,
  });
  return result;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function temporaryDirectory(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "rgrid-cli-"));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
