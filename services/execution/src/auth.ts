import { createHash, randomBytes } from "node:crypto";
import type { HandlerContext, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { bearerToken, matchesAnySecret } from "@rgrid/common";
import { ExecutionService, Health, RunnerService } from "@rgrid/proto";
import type { Database } from "./db/orm";
import { ApiKey } from "./db/entities";

/** Who is calling ExecutionService: the account an API key belongs to, and the key itself. */
export interface Caller {
  accountId: string;
  apiKeyId: string;
}

const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

export const API_KEY_PREFIX = "rgrid_";

/** A new API key: a recognisable prefix and 32 random bytes. Only its hash is ever stored. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export interface AuthDeps {
  db: Database;
  runnerTokens: readonly string[];
  /** Remembers resolved keys so the hot path skips a query; defaults to a fresh cache. */
  apiKeyCache?: ApiKeyCache;
}

/**
 * Resolved API keys by hash, kept briefly: every RPC authenticates, and a lookup per call is a
 * large share of a cheap RPC's cost. Only keys that resolved are kept, so guessing fills
 * nothing; a key removed from the database stops working within the time to live.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, { caller: Caller; expiresAt: number }>();

  constructor(
    private readonly ttlMillis = 30_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(keyHash: string): Caller | undefined {
    const entry = this.entries.get(keyHash);
    if (entry === undefined || entry.expiresAt <= this.now()) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.caller;
  }

  set(keyHash: string, caller: Caller): void {
    if (this.entries.size >= this.maxEntries) {
      // Oldest first: a Map iterates in insertion order.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) {
        this.entries.delete(oldest);
      }
    }
    this.entries.set(keyHash, { caller, expiresAt: this.now() + this.ttlMillis });
  }
}

/**
 * Decides by the procedure's service who may call it: ExecutionService takes API keys (looked up
 * by hash, so the key itself is never compared or logged), RunnerService the configured runner
 * tokens, the health check anyone. A credential of one kind is useless on the other service.
 */
export function authenticate(deps: AuthDeps): Interceptor {
  const cache = deps.apiKeyCache ?? new ApiKeyCache();
  return (next) => async (req) => {
    switch (req.service.typeName) {
      case Health.typeName:
        return next(req);
      case ExecutionService.typeName: {
        const caller = await callerForApiKey(deps.db, cache, bearerToken(req.header));
        if (caller === undefined) {
          throw new ConnectError("missing or invalid API key", Code.Unauthenticated);
        }
        req.contextValues.set(callerKey, caller);
        return next(req);
      }
      case RunnerService.typeName: {
        const token = bearerToken(req.header);
        if (token === undefined || !matchesAnySecret(token, deps.runnerTokens)) {
          throw new ConnectError("missing or invalid runner token", Code.Unauthenticated);
        }
        return next(req);
      }
      default:
        // A service added to the routes without deciding who may call it stays closed.
        throw new ConnectError("no access rule for this service", Code.PermissionDenied);
    }
  };
}

async function callerForApiKey(db: Database, cache: ApiKeyCache, key: string | undefined): Promise<Caller | undefined> {
  if (key === undefined || !key.startsWith(API_KEY_PREFIX)) {
    return undefined;
  }
  const keyHash = hashApiKey(key);
  const cached = cache.get(keyHash);
  if (cached !== undefined) {
    return cached;
  }
  const apiKey = await db.fork().findOne(ApiKey, { keyHash });
  if (apiKey === null) {
    return undefined;
  }
  const caller = { accountId: apiKey.accountId, apiKeyId: apiKey.id };
  cache.set(keyHash, caller);
  return caller;
}

/** The caller the interceptor authenticated; only ExecutionService handlers have one. */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (caller === undefined) {
    // Reaching a handler without a caller means the interceptor is not installed.
    throw new Error("ExecutionService handler called without an authenticated caller");
  }
  return caller;
}
