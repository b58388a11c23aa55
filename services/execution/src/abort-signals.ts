/** A signal that aborts when either of two does, and a release for the listener it adds. */
export interface LinkedSignal {
  signal: AbortSignal;
  /** Removes the listener on the long-lived signal; call when the call using `signal` ends. */
  release(): void;
}

/**
 * Links a call's signal to a long-lived one (the service's "stopping"). AbortSignal.any would
 * do, but on Node 20 every combined signal leaves an entry on its sources for as long as they
 * live, so one per claim or log stream grows without bound on a signal that lives for the
 * process. Here the listener on the long-lived signal is removed when the call ends.
 */
export function linkSignals(call: AbortSignal, longLived: AbortSignal | undefined): LinkedSignal {
  if (longLived === undefined) {
    return { signal: call, release: () => undefined };
  }
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (call.aborted || longLived.aborted) {
    abort();
    return { signal: controller.signal, release: () => undefined };
  }
  call.addEventListener("abort", abort, { once: true });
  longLived.addEventListener("abort", abort, { once: true });
  return {
    signal: controller.signal,
    release() {
      call.removeEventListener("abort", abort);
      longLived.removeEventListener("abort", abort);
    },
  };
}
