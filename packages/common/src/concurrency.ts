/**
 * Maps `items` with at most `limit` calls in flight, keeping the input order. After the first
 * failure no new item starts; calls already running are awaited (so the caller can clean up
 * after everything that happened) and the first failure is thrown.
 */
export async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;

  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) {
    throw failure.error;
  }
  return results;
}

/**
 * Calls that share one attempt while it runs: a call with the key of one still running gets that
 * call's promise instead of starting its own (a client re-sending an identical request, say).
 * Once settled, the key starts afresh.
 */
export function sharedWhileRunning<T>(): (key: string, start: () => Promise<T>) => Promise<T> {
  const running = new Map<string, Promise<T>>();
  return (key, start) => {
    const shared = running.get(key);
    if (shared !== undefined) {
      return shared;
    }
    const attempt = start().finally(() => running.delete(key));
    running.set(key, attempt);
    return attempt;
  };
}

/** One item's answer from a batch: its value, or the error it alone failed with. */
export type BatchOutcome<R> = { value: R } | { error: unknown };

/**
 * Calls batched while busy: the first call goes at once, in a batch of its own; calls made while
 * a batch is on its way wait, and go together (at most `maxBatch`) when it returns. An idle
 * caller pays nothing, a busy one one trip for many calls, and batches grow by themselves as
 * the far side slows down. `send` answers each item of its batch, in order; should it throw,
 * every item of that batch fails with its error.
 */
export function batchedWhileBusy<T, R>(maxBatch: number, send: (batch: T[]) => Promise<Array<BatchOutcome<R>>>): (item: T) => Promise<R> {
  const waiting: Array<{ item: T; resolve: (value: R) => void; reject: (error: unknown) => void }> = [];
  let sending = false;
  const drain = async () => {
    sending = true;
    while (waiting.length > 0) {
      const batch = waiting.splice(0, maxBatch);
      try {
        const outcomes = await send(batch.map((entry) => entry.item));
        batch.forEach((entry, index) => {
          const outcome = outcomes[index];
          if (outcome === undefined) {
            entry.reject(new Error(`a batch of ${batch.length} was answered for ${outcomes.length}`));
          } else if ("value" in outcome) {
            entry.resolve(outcome.value);
          } else {
            entry.reject(outcome.error);
          }
        });
      } catch (error) {
        batch.forEach((entry) => entry.reject(error));
      }
    }
    sending = false;
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!sending) {
        void drain();
      }
    });
}
