/**
 * Wakes the FollowLogs streams of one execution when its log lines are stored or it ends, and
 * no others: a log write wakes only the streams that can have something new to send.
 *
 * A stream watches BEFORE it looks at the database and waits on that same watch afterwards, so
 * a notification in between is not lost: the watch remembers it and the wait returns at once.
 * A watch is forgotten when it is notified, when its wait ends (timeout or abort) or when it is
 * stopped, so executions nobody follows leave nothing behind.
 */
export class ExecutionActivity {
  private readonly watches = new Map<string, Set<ActivityWatch>>();
  /** Told of every notify made here: passes it to the other replicas (cluster/signals.ts). */
  relay: (executionId: string) => void = () => undefined;

  /** Starts noticing notifications for `executionId`; look, then wait on (or stop) the watch. */
  watch(executionId: string): ActivityWatch {
    const watch = new ActivityWatch(() => this.forget(executionId, watch));
    const watching = this.watches.get(executionId);
    if (watching === undefined) {
      this.watches.set(executionId, new Set([watch]));
    } else {
      watching.add(watch);
    }
    return watch;
  }

  notify(executionId: string): void {
    this.wake(executionId);
    this.relay(executionId);
  }

  /** Wakes this process's streams of `executionId` only: for lines another replica stored. */
  wake(executionId: string): void {
    const watching = this.watches.get(executionId);
    if (watching === undefined) {
      return;
    }
    this.watches.delete(executionId);
    watching.forEach((watch) => watch.markChanged());
  }

  /** Wakes every stream of this process: after a time in which other replicas' notifications went unheard. */
  wakeAll(): void {
    [...this.watches.keys()].forEach((executionId) => this.wake(executionId));
  }

  /** How many executions have a watch now: nobody waiting means zero. */
  get watchedExecutions(): number {
    return this.watches.size;
  }

  private forget(executionId: string, watch: ActivityWatch): void {
    const watching = this.watches.get(executionId);
    if (watching?.delete(watch) === true && watching.size === 0) {
      this.watches.delete(executionId);
    }
  }
}

/** One look-then-wait of one stream at one execution. */
export class ActivityWatch {
  private notified = false;
  private wake: (() => void) | undefined;

  constructor(private readonly forget: () => void) {}

  /** True once its execution was notified after the watch began. */
  get changed(): boolean {
    return this.notified;
  }

  /** @internal Called by ExecutionActivity.notify. */
  markChanged(): void {
    this.notified = true;
    this.wake?.();
  }

  /**
   * Resolves when notified since the watch began (at once if that already happened), after
   * `timeoutMillis`, or when `signal` aborts; the watch is then forgotten.
   */
  wait(timeoutMillis: number, signal: AbortSignal): Promise<void> {
    if (this.notified || signal.aborted || timeoutMillis <= 0) {
      this.stop();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", finish);
        this.wake = undefined;
        this.stop();
        resolve();
      };
      const timer = setTimeout(finish, timeoutMillis);
      signal.addEventListener("abort", finish, { once: true });
      this.wake = finish;
    });
  }

  /** Forgets the watch without waiting (the stream ended, or looks again at once). Idempotent. */
  stop(): void {
    this.forget();
  }
}
