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
}

/**
 * Decides by the procedure's service who may call it: ExecutionService takes API keys (looked up
 * by hash, so the key itself is never compared or logged), RunnerService the configured runner
 * tokens, the health check anyone. A credential of one kind is useless on the other service.
 */
export function authenticate(deps: AuthDeps): Interceptor {
  return (next) => async (req) => {
    switch (req.service.typeName) {
      case Health.typeName:
        return next(req);
      case ExecutionService.typeName: {
        const caller = await callerForApiKey(deps.db, bearerToken(req.header));
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

async function callerForApiKey(db: Database, key: string | undefined): Promise<Caller | undefined> {
  if (key === undefined || !key.startsWith(API_KEY_PREFIX)) {
    return undefined;
  }
  const apiKey = await db.fork().findOne(ApiKey, { keyHash: hashApiKey(key) });
  return apiKey ? { accountId: apiKey.accountId, apiKeyId: apiKey.id } : undefined;
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
