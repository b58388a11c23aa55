// Builds a runner from its configuration: the isolation this machine allows, the RunnerService
// client, the runtimes found on this machine, and the runner itself. Shared by main.ts and
// launchers that embed a runner.

import { readFileSync } from "node:fs";
import * as path from "node:path";
import { createInternalClient } from "@rgrid/common";
import type { Logger } from "@rgrid/common";
import { RunnerService } from "@rgrid/proto";
import type { RunnerConfig } from "./config";
import { createRunner } from "./runner";
import type { Runner } from "./runner";
import { detectRuntimes } from "./runtimes";
import { probeSandbox, setprivArgs } from "./sandbox";
import type { SandboxCapabilities } from "./sandbox";

export class MissingRuntimeError extends Error {
  constructor(readonly missing: readonly string[]) {
    super(`runtime not found on this machine: ${missing.join(", ")}`);
    this.name = "MissingRuntimeError";
  }
}

export interface AssembledRunner {
  runner: Runner;
  runtimes: readonly string[];
  sandbox: SandboxCapabilities;
}

/**
 * Throws MissingRuntimeError when a configured runtime is not installed, SandboxUnavailableError
 * when isolation is required and not possible. Logs each isolation measure that is missing.
 */
export function assembleRunner(config: RunnerConfig, logger: Logger, nodeBinary: string): AssembledRunner {
  const sandbox = probeSandbox({ config: config.sandbox, searchPath: config.searchPath, isRoot: process.getuid?.() === 0 });
  for (const warning of sandbox.warnings) {
    logger.warn(`sandbox: ${warning}`);
  }
  const drop = sandbox.dropPrivileges;
  const { catalog, missing } = detectRuntimes({
    searchPath: config.searchPath,
    wanted: config.runtimes,
    nodeBinary,
    // Interpreters must work for the script users, not only for root.
    runAs: drop === undefined ? undefined : [drop.setpriv, ...setprivArgs(drop.uidBase)],
  });
  if (missing.length > 0 && config.runtimes !== undefined) {
    throw new MissingRuntimeError(missing);
  }
  const runner = createRunner({
    client: createInternalClient(RunnerService, config.executionUrl, config.runnerToken),
    logger,
    name: config.runnerName,
    version: packageVersion(),
    runtimes: catalog,
    workDir: config.workDir,
    concurrency: config.concurrency,
    killGraceMs: config.killGraceSeconds * 1000,
    shutdownGraceMs: config.shutdownGraceSeconds * 1000,
    sandbox,
  });
  return { runner, runtimes: catalog.names, sandbox };
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(path.join(__dirname, "..", "package.json"), "utf8")) as { version: string };
  return manifest.version;
}
