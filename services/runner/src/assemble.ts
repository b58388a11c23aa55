// Builds a runner from its configuration: the isolation this machine allows, the RunnerService
// client, the runtimes found on this machine, and the runner itself. Shared by main.ts and
// launchers that embed a runner.

import { readFileSync, statSync } from "node:fs";
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
import { checkWorkRoot } from "./work-root";

export class MissingRuntimeError extends Error {
  constructor(readonly missing: readonly string[]) {
    super(`runtime not found on this machine: ${missing.join(", ")}`);
    this.name = "MissingRuntimeError";
  }
}

/** Scripts run as another uid could not reach their working directories under this work root. */
export class UnreachableWorkDirError extends Error {
  constructor(workDir: string, blocking: string) {
    super(
      `RGRID_RUNNER_WORK_DIR ${workDir} cannot be reached by the unprivileged users scripts run as: ` +
        `${blocking} is not searchable by other users. Choose a work directory under /tmp, or allow ` +
        `others to pass through (chmod o+x ${blocking}).`,
    );
    this.name = "UnreachableWorkDirError";
  }
}

/**
 * The first existing directory above `workDir` that other users cannot pass through, if any.
 * The runner makes the work root itself (0711), so only its ancestors matter.
 */
export function firstUnsearchableAncestor(workDir: string): string | undefined {
  let directory = path.dirname(path.resolve(workDir));
  const ancestors: string[] = [];
  for (;;) {
    ancestors.unshift(directory);
    const parent = path.dirname(directory);
    if (parent === directory) {
      break;
    }
    directory = parent;
  }
  for (const ancestor of ancestors) {
    let mode: number;
    try {
      mode = statSync(ancestor).mode;
    } catch {
      return undefined; // not there yet: the runner creates it, searchable, with the work root
    }
    if ((mode & 0o001) === 0) {
      return ancestor;
    }
  }
  return undefined;
}

export interface AssembledRunner {
  runner: Runner;
  runtimes: readonly string[];
  sandbox: SandboxCapabilities;
}

/**
 * Throws MissingRuntimeError when a configured runtime is not installed, SandboxUnavailableError
 * when isolation is required and not possible, UnreachableWorkDirError when scripts dropped to
 * another uid could not reach their working directories, UnsafeWorkRootError when the work root
 * cannot be trusted. Logs each isolation measure that is missing.
 */
export function assembleRunner(config: RunnerConfig, logger: Logger, nodeBinary: string): AssembledRunner {
  const isRoot = process.getuid?.() === 0;
  checkWorkRoot(config.workDir, isRoot);
  const sandbox = probeSandbox({ config: config.sandbox, searchPath: config.searchPath, isRoot });
  for (const warning of sandbox.warnings) {
    logger.warn(`sandbox: ${warning}`);
  }
  const drop = sandbox.dropPrivileges;
  const blocking = drop === undefined ? undefined : firstUnsearchableAncestor(config.workDir);
  if (blocking !== undefined) {
    throw new UnreachableWorkDirError(config.workDir, blocking);
  }
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
