// Short synchronous jobs, run in slices of the event loop's turns so that a burst of them cannot
// hold the loop: the local-file store's links (fs-links.ts) are its one user.

/** Runs synchronous work now or in a later turn of the event loop; answers its result. */
export type Slicer = <T>(work: () => T) => Promise<T>;

/**
 * A slice starts with the first work after a turn and takes work until it has lasted
 * `sliceMillis`; what comes after waits, first come first run, for the next turn's slice. Work
 * called while the slice has time and nothing waits runs at once, in the caller's tick.
 *
 * Waiting work sits in one queue that each turn drains from its head: every job is looked at
 * once, however many wait, and however slow each is (a disk under load) — not woken every turn
 * to look at the clock, which made a burst of N slow jobs cost N² wake-ups.
 */
export function createSlicer(sliceMillis: number): Slicer {
  let sliceStarted: number | undefined;
  const waiting: Array<() => void> = [];
  let head = 0;

  const hasTime = (): boolean => {
    const now = performance.now();
    if (sliceStarted === undefined) {
      sliceStarted = now;
      setImmediate(nextTurn);
      return true;
    }
    return now - sliceStarted < sliceMillis;
  };

  function nextTurn(): void {
    sliceStarted = undefined;
    while (head < waiting.length && hasTime()) {
      const run = waiting[head] as () => void;
      waiting[head] = noop;
      head += 1;
      run();
    }
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    }
  }

  return <T>(work: () => T): Promise<T> => {
    if (head === waiting.length && hasTime()) {
      try {
        return Promise.resolve(work());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      waiting.push(() => {
        try {
          resolve(work());
        } catch (error) {
          reject(error);
        }
      });
    });
  };
}

function noop(): void {}
