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
