import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { bearerToken, matchesAnySecret } from "@rgrid/common";

/**
 * Requires the internal service token on every call to the named service; other services on
 * the same port stay open: the health check, and server reflection, which describes only the
 * public protos and answers nothing about stored objects. A missing and a wrong token are both
 * Unauthenticated: the caller did not prove who it is.
 */
export function requireInternalToken(serviceTypeName: string, tokens: readonly string[]): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === serviceTypeName) {
      const token = bearerToken(req.header);
      if (token === undefined) {
        throw new ConnectError("missing bearer token", Code.Unauthenticated);
      }
      if (!matchesAnySecret(token, tokens)) {
        throw new ConnectError("invalid internal token", Code.Unauthenticated);
      }
    }
    return next(req);
  };
}
