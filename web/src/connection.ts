import { Code, ConnectError } from "@connectrpc/connect";
import { MutationCache, QueryCache, QueryClient } from "@tanstack/react-query";

/** The connection as the console last saw it, shared by every call it makes. */
export class ConnectionEvents {
  /** Delay before re-sending a call, or re-opening a stream, that failed for want of a connection. */
  readonly retryDelayMs: (attempt: number) => number;
  private lost = false;
  private readonly lostListeners = new Set<() => void>();
  private readonly unauthenticatedListeners = new Set<() => void>();

  constructor(options: { retryDelayMs?: (attempt: number) => number } = {}) {
    this.retryDelayMs = options.retryDelayMs ?? backoffMs;
  }

  readonly subscribeLost = (listener: () => void): (() => void) => {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  };

  readonly isLost = (): boolean => this.lost;

  onUnauthenticated(listener: () => void): () => void {
    this.unauthenticatedListeners.add(listener);
    return () => this.unauthenticatedListeners.delete(listener);
  }

  /** Every failed call reports here: a lost connection raises the banner, a lost session signs out. */
  reportError(error: unknown): void {
    if (isConnectionLost(error)) this.setLost(true);
    else if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
      for (const listener of [...this.unauthenticatedListeners]) listener();
    }
  }

  /** Any answer from the server proves the connection is back. */
  reportSuccess(): void {
    this.setLost(false);
  }

  private setLost(lost: boolean): void {
    if (this.lost === lost) return;
    this.lost = lost;
    for (const listener of [...this.lostListeners]) listener();
  }
}

/**
 * True when the server could not be reached: Unavailable (also what proxies' 502/503 become), or
 * fetch itself failing, which connect-web reports as Unknown caused by a TypeError.
 */
export function isConnectionLost(error: unknown): boolean {
  if (error instanceof TypeError) return true;
  if (!(error instanceof ConnectError)) return false;
  if (error.code === Code.Unavailable) return true;
  return error.code === Code.Unknown && error.cause instanceof TypeError;
}

/** The server's own sentence for a refusal; something readable for anything else. */
export function errorMessage(error: unknown): string {
  if (isConnectionLost(error)) return "The server could not be reached. Check the connection and try again.";
  if (error instanceof ConnectError) {
    const message = error.rawMessage.trim();
    if (message) return message;
    return `The request failed (${Code[error.code] ?? "unknown error"}).`;
  }
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong.";
}

/** Exponential backoff for re-sending after a lost connection: 1 s, 2 s, 4 s, … at most 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt), 10_000);
}

/**
 * Queries that fail because the connection is lost are re-sent with backoff until it is back;
 * every other failure (a refusal, NotFound, Unauthenticated) is final and shown. Every attempt's
 * outcome feeds the connection banner.
 */
export function createQueryClient(events: ConnectionEvents): QueryClient {
  const queryCache = new QueryCache();
  const mutationCache = new MutationCache({
    onError: (error) => events.reportError(error),
    onSuccess: () => events.reportSuccess(),
  });
  const client = new QueryClient({
    queryCache,
    mutationCache,
    defaultOptions: {
      queries: {
        retry: (_failureCount, error) => isConnectionLost(error),
        // TanStack counts failures before this one: 0 for the first re-send.
        retryDelay: (failureCount) => events.retryDelayMs(failureCount),
        staleTime: 1000,
      },
      mutations: { retryDelay: (failureCount) => events.retryDelayMs(failureCount) },
    },
  });
  // Each failed attempt, not only the last one, so the banner shows while queries retry.
  queryCache.subscribe((event) => {
    if (event.type !== "updated") return;
    const { action } = event;
    if (action.type === "failed" || action.type === "error") events.reportError(action.error);
    else if (action.type === "success") events.reportSuccess();
  });
  return client;
}

/**
 * Mutations whose request carries a request_id may be re-sent after a lost connection: the
 * server returns what the first one did.
 */
export function idempotentMutationRetry(failureCount: number, error: unknown): boolean {
  return failureCount < 3 && isConnectionLost(error);
}
