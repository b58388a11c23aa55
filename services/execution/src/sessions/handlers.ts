import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { SessionSchema } from "@rgrid/proto";
import type { ExecutionService, Session as SessionMessage } from "@rgrid/proto";
import { findApiKeyCaller, callerOf } from "../auth";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { Account } from "../db/entities";
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
      const em = db.fork();
      const now = clock();
      let account: { accountId: string; apiKeyId: string | null };
      switch (request.credential.case) {
        case "apiKey": {
          const caller = await findApiKeyCaller(db, request.credential.value);
          if (caller === undefined) {
            throw new ConnectError("that API key is not valid", Code.Unauthenticated);
          }
          account = { accountId: caller.accountId, apiKeyId: caller.actorId };
          break;
        }
        case "signInToken": {
          const accountId = await spendSignInToken(em, request.credential.value, now);
          if (accountId === undefined) {
            throw new ConnectError(
              "this sign-in link was already used or has expired; sign in with an API key, or restart the local grid for a new link",
              Code.Unauthenticated,
            );
          }
          account = { accountId, apiKeyId: null };
          break;
        }
        default:
          throw new ConnectError("credential: an api_key or a sign_in_token is required", Code.InvalidArgument);
      }
      const opened = await openSession(em, account, now, deps.sessionTtlSeconds);
      ctx.responseHeader.append("Set-Cookie", sessionCookie(opened.token, deps.sessionTtlSeconds, isSecureRequest(ctx.url, ctx.requestHeader)));
      const caller: Caller = {
        accountId: account.accountId,
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
