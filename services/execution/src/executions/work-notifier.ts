/**
 * Wakes ClaimExecution long-polls in this process the moment an execution becomes queued, so a
 * waiting runner starts work without a polling delay. A version counter closes the gap between
 * a claimer's empty look at the queue and its starting to wait: a notification in between is
 * not lost. With several replicas, each local notify is also relayed to the others
 * (cluster/signals.ts), whose claims `wake`.
 */
export class WorkNotifier {
  private currentVersion = 0;
  private readonly waiters = new Set<() => void>();
  /** Told of every notify made here: passes it to the other replicas. */
  relay: () => void = () => undefined;

  get version(): number {
    return this.currentVersion;
  }

  notify(): void {
    this.wake();
    this.relay();
  }

  /** Wakes this process's waiting claims only: for work another replica announced. */
  wake(): void {
    this.currentVersion++;
    const waiting = [...this.waiters];
    this.waiters.clear();
    waiting.forEach((wake) => wake());
  }

  /** Resolves when notified after `seenVersion`, after `timeoutMillis`, or when `signal` aborts. */
  waitForChange(seenVersion: number, timeoutMillis: number, signal: AbortSignal): Promise<void> {
    if (this.currentVersion !== seenVersion || signal.aborted || timeoutMillis <= 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", finish);
        this.waiters.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMillis);
      signal.addEventListener("abort", finish, { once: true });
      this.waiters.add(finish);
    });
  }
}
