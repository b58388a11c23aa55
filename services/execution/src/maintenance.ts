// Background work that one replica does for all (cluster/leadership.ts): run every interval,
// never two passes of one task at once, a failed pass logged and tried again next interval.
import type { Logger } from "@rgrid/common";

export interface RecurringTask {
  start(): void;
  /** Stops the schedule, tells a pass in progress to end early (its signal) and waits for it. */
  stop(): Promise<void>;
}

export interface RecurringTaskOptions {
  name: string;
  intervalMillis: number;
  /** Asked before each pass: only the maintenance leader runs it. */
  isLeader: () => boolean;
  /** One pass; a long one ends early, its work so far kept, once `stopping` is aborted. */
  run: (stopping: AbortSignal) => Promise<unknown>;
  logger: Logger;
}

export function recurringTask(options: RecurringTaskOptions): RecurringTask {
  let timer: NodeJS.Timeout | undefined;
  let inProgress: Promise<unknown> | undefined;
  let stopped = false;
  const stopping = new AbortController();

  const schedule = () => {
    timer = setTimeout(() => {
      if (!options.isLeader()) {
        schedule();
        return;
      }
      inProgress = options
        .run(stopping.signal)
        .catch((error: unknown) => options.logger.warn(`${options.name} failed; trying again next interval`, { error }))
        .finally(() => {
          inProgress = undefined;
          if (!stopped) {
            schedule();
          }
        });
    }, options.intervalMillis);
  };

  return {
    start() {
      if (timer === undefined && !stopped && options.intervalMillis > 0) {
        schedule();
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      stopping.abort();
      await inProgress;
    },
  };
}

/** Several tasks started and stopped together. */
export function allTasks(tasks: readonly RecurringTask[]): RecurringTask {
  return {
    start: () => tasks.forEach((task) => task.start()),
    stop: async () => {
      await Promise.all(tasks.map((task) => task.stop()));
    },
  };
}
