import type { Logger } from "./logger";

/**
 * A service's graceful stop: on the first SIGTERM or SIGINT, `stop` runs once (a second signal
 * does not cut it short) and the process exits 0 when it finished, 1 when it failed.
 */
export function exitOnStopSignal(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      return;
    }
    stopping = true;
    logger.info("stopping", { signal });
    stop().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error("shutdown failed", { error });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
