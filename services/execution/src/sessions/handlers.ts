import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { SessionSchema } from "@rgrid/proto";
import type { CreateSessionRequest, ExecutionService, Session as SessionMessage } from "@rgrid/proto";
import type { EntityManager } from "@mikro-orm/knex";
import { recordAudit, rpcRequestId } from "../audit/record";
import { findApiKeyCaller, callerOf } from "../auth";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { sqlSessionOf } from "../db/raw-query";
import { Account } from "../db/entities";
import { inOrmTransaction } from "../db/orm-transaction";
import { clearedSessionCookie, sessionCookie } from "./cookie";
import { foreignOriginProblem, isSecureRequest } from "./origin";
import { openSession, revokeSession, spendSignInToken } from "./sessions";

export interface SessionHandlerDeps {
  db: Database;
  clock: () => Date;
  sessionTtlSeconds: number;
}

type SessionHandlers = Pick<ServiceImpl<typeof ExecutionService>, "createSession" | "getSession" | "deleteSession">;

/** Signing the console in and out; the session itself is checked by the auth interceptor. */
export function createSessionHandlers(deps: SessionHandlerDeps): SessionHandlers {
  const { db, clock } = deps;

  async function sessionMessage(caller: Caller): Promise<SessionMessage> {
    const account = await db.fork().findOneOrFail(Account, caller.accountId, { fields: ["name"] });
    return create(SessionSchema, {
      accountId: caller.accountId,
      accountName: account.name,
      expiresAt: caller.session ? timestampFromDate(caller.session.expiresAt) : undefined,
    });
  }

  return {
    async createSession(request, ctx) {
      // Only the console's own pages open sessions: a foreign page could otherwise sign a
      // visitor into an account of its choosing.
      const foreign = foreignOriginProblem(ctx.url, ctx.requestHeader);
      if (foreign !== undefined) {
        throw new ConnectError(foreign, Code.PermissionDenied);
      }
      // An API key is looked up before the transaction: it reads through a fork of its own,
      // which on SQLite's one connection could not run beside an open transaction.
      const keyCaller = request.credential.case === "apiKey" ? await findApiKeyCaller(db, request.credential.value) : undefined;
      // One transaction spends the sign-in token, opens the session and records the sign-in, so
      // none of them happens without the others.
      const opened = await inOrmTransaction(db.fork(), async (em) => {
        const now = clock();
        const account = await accountSigningIn(em, request.credential, keyCaller, now);
        const session = await openSession(em, account, now, deps.sessionTtlSeconds);
        // Who: the API key that signed in, or for a sign-in link the session it opened.
        await recordAudit(sqlSessionOf(em), { accountId: account.accountId, actorId: account.apiKeyId ?? session.session.id }, now, {
          action: "sign_in",
          requestId: rpcRequestId(ctx),
          reason: "",
          outcome: session.session.id,
        });
        return session;
      });
      ctx.responseHeader.append("Set-Cookie", sessionCookie(opened.token, deps.sessionTtlSeconds, isSecureRequest(ctx.url, ctx.requestHeader)));
      const caller: Caller = {
        accountId: opened.session.accountId,
        actorId: opened.session.id,
        session: { id: opened.session.id, expiresAt: opened.session.expiresAt },
      };
      return { session: await sessionMessage(caller) };
    },

    async getSession(_request, ctx) {
      return { session: await sessionMessage(callerOf(ctx)) };
    },

    async deleteSession(_request, ctx) {
      const caller = callerOf(ctx);
      if (caller.session !== undefined) {
        await revokeSession(db.fork(), caller.session.id, clock());
        ctx.responseHeader.append("Set-Cookie", clearedSessionCookie(isSecureRequest(ctx.url, ctx.requestHeader)));
      }
      return {};
    },
  };
}

/** The account a credential signs in, with the API key that proved it (none for a sign-in link). */
async function accountSigningIn(
  em: EntityManager,
  credential: CreateSessionRequest["credential"],
  keyCaller: Caller | undefined,
  now: Date,
): Promise<{ accountId: string; apiKeyId: string | null }> {
  switch (credential.case) {
    case "apiKey": {
      if (keyCaller === undefined) {
        throw new ConnectError("that API key is not valid", Code.Unauthenticated);
      }
      return { accountId: keyCaller.accountId, apiKeyId: keyCaller.actorId };
    }
    case "signInToken": {
      const accountId = await spendSignInToken(em, credential.value, now);
      if (accountId === undefined) {
        throw new ConnectError(
          "this sign-in link was already used or has expired; sign in with an API key, or restart the local grid for a new link",
          Code.Unauthenticated,
        );
      }
      return { accountId, apiKeyId: null };
    }
    default:
      throw new ConnectError("credential: an api_key or a sign_in_token is required", Code.InvalidArgument);
  }
}
