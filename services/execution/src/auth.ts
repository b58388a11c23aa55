import type { HandlerContext, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { bearerToken, matchesAnySecret } from "@rgrid/common";
import { ExecutionService, Health, RunnerService, reflectionV1, reflectionV1alpha } from "@rgrid/proto";
import type { Database } from "./db/orm";
import { ApiKey } from "./db/entities";
import { hashSecret, newSecret } from "./secrets";
import { sessionTokenFrom } from "./sessions/cookie";
import { foreignOriginProblem } from "./sessions/origin";
import { findLiveSession } from "./sessions/sessions";

/** Who is calling ExecutionService: the account, and the credential that proved it. */
export interface Caller {
  accountId: string;
  /** The API key's id, or the console session's id: recorded as who asked for a retry. */
  actorId: string;
  /** Set when the caller is a console session (cookie), not an API key. */
  session?: { id: string; expiresAt: Date };
}

const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

export const API_KEY_PREFIX = "rgrid_";

/** A new API key: a recognisable prefix and 32 random bytes. Only its hash is ever stored. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + newSecret();
}

export const hashApiKey = hashSecret;

export interface AuthDeps {
  db: Database;
  runnerTokens: readonly string[];
  /** Remembers resolved keys so the hot path skips a query; defaults to a fresh cache. */
  apiKeyCache?: ApiKeyCache;
  clock: () => Date;
}

/** The one ExecutionService method callable without a credential: it is how a browser gets one. */
const SIGN_IN_METHOD = ExecutionService.method.createSession;

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
 * by hash, so the key itself is never compared or logged) or the console's session cookie (only
 * from the console's own origin), RunnerService the configured runner tokens, the health check
 * and server reflection anyone. A credential of one kind is useless on the other service.
 */
export function authenticate(deps: AuthDeps): Interceptor {
  const cache = deps.apiKeyCache ?? new ApiKeyCache();
  return (next) => async (req) => {
    switch (req.service.typeName) {
      case Health.typeName:
        return next(req);
      // Reflection describes only the public protos (they ship in this repository) and reads
      // nothing of any account; tools ask it before the call, and buf curl sends the call's
      // headers to it only when told to (--reflect-header). Every call it helps encode is still
      // authenticated here as usual.
      case reflectionV1.ServerReflection.typeName:
      case reflectionV1alpha.ServerReflection.typeName:
        return next(req);
      case ExecutionService.typeName: {
        if (req.method === SIGN_IN_METHOD) {
          return next(req); // checks the credential it is given itself
        }
        req.contextValues.set(callerKey, await callerOfRequest(deps, cache, req.url, req.header));
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

/**
 * A Bearer key when one is sent (a wrong key is refused, never passed over for the cookie), else
 * the session cookie.
 */
async function callerOfRequest(deps: AuthDeps, cache: ApiKeyCache, url: string, header: Headers): Promise<Caller> {
  if (header.has("authorization")) {
    const caller = await callerForApiKey(deps.db, cache, bearerToken(header));
    if (caller === undefined) {
      throw new ConnectError("missing or invalid API key", Code.Unauthenticated);
    }
    return caller;
  }
  const sessionToken = sessionTokenFrom(header.get("cookie"));
  if (sessionToken === undefined) {
    throw new ConnectError("missing or invalid API key: send Authorization: Bearer <api key>, or sign in to the console", Code.Unauthenticated);
  }
  const foreign = foreignOriginProblem(url, header);
  if (foreign !== undefined) {
    throw new ConnectError(foreign, Code.PermissionDenied);
  }
  const session = await findLiveSession(deps.db.fork(), sessionToken, deps.clock());
  if (session === undefined) {
    throw new ConnectError("your session has ended; sign in again", Code.Unauthenticated);
  }
  return { accountId: session.accountId, actorId: session.id, session: { id: session.id, expiresAt: session.expiresAt } };
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
  const caller = await callerForKeyHash(db, keyHash);
  if (caller !== undefined) {
    cache.set(keyHash, caller);
  }
  return caller;
}

/** The account an API key belongs to, looked up now (no cache): for signing in with a key. */
export async function findApiKeyCaller(db: Database, key: string): Promise<Caller | undefined> {
  return key.startsWith(API_KEY_PREFIX) ? callerForKeyHash(db, hashApiKey(key)) : undefined;
}

async function callerForKeyHash(db: Database, keyHash: string): Promise<Caller | undefined> {
  const apiKey = await db.fork().findOne(ApiKey, { keyHash });
  return apiKey === null ? undefined : { accountId: apiKey.accountId, actorId: apiKey.id };
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
