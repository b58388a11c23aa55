// Entry point of a runner process: configuration from the environment, registration, claim
// loops, and a graceful stop on SIGTERM/SIGINT.

import { ConfigError, createProcessLogger } from "@rgrid/common";
import { MissingRuntimeError, UnreachableWorkDirError, assembleRunner } from "./assemble";
import { loadRunnerConfig } from "./config";
import { SandboxUnavailableError } from "./sandbox";
import { UidRangeTakenError } from "./uid-range";
import { UnsafeWorkRootError } from "./work-root";

async function main(): Promise<number> {
  let config;
  try {
    config = loadRunnerConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Before there is a logger in the configured format: a list for the person starting it.
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createProcessLogger("runner", config.logFormat);
  let assembled;
  try {
    assembled = assembleRunner(config, logger, process.execPath);
  } catch (error) {
    const badSetup = [ConfigError, MissingRuntimeError, SandboxUnavailableError, UnreachableWorkDirError, UnsafeWorkRootError];
    if (badSetup.some((kind) => error instanceof kind)) {
      logger.error((error as Error).message);
      return 2;
    }
    throw error;
  }
  const { runner, runtimes } = assembled;
  if (runtimes.length === 0) {
    logger.error("no runtime found on this machine; install python3 or set RGRID_RUNNER_RUNTIMES");
    return 2;
  }

  let stopping: Promise<void> | undefined;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping !== undefined) {
        return;
      }
      logger.info("stopping", { signal });
      stopping = runner.stop().then(resolve);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  try {
    const runnerId = await runner.start();
    logger.info(`runner registered id=${runnerId} runtimes=${runtimes.join(",")}`);
  } catch (error) {
    if (stopping !== undefined) {
      await stopped;
      return 0;
    }
    if (error instanceof UidRangeTakenError) {
      logger.error(error.message);
      return 2;
    }
    logger.error("could not register with execution-service", { error: String(error) });
    return 1;
  }
  await stopped;
  logger.info("stopped");
  return 0;
}

main().then(
  // The RunnerService client keeps its HTTP/2 session open, so the process is ended explicitly.
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`runner crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
