import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "./logger";

/**
 * An interceptor that passes every error of a call through `transform` — whether the handler
 * throws before answering or, for a server stream, in the middle of its messages (which a plain
 * try/catch around `next` never sees).
 */
export function transformErrors(transform: (error: unknown, req: UnaryRequest | StreamRequest) => unknown): Interceptor {
  return (next) => async (req) => {
    let res;
    try {
      res = await next(req);
    } catch (error) {
      throw transform(error, req);
    }
    if (!res.stream) {
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw transform(error, req);
        }
      })(),
    };
  };
}

/**
 * The last line of every service's error handling: errors the service's own error map did not
 * turn into a ConnectError reach the client as Internal with no details, and their cause is
 * logged here with the procedure that failed.
 */
export function hideUnknownErrors(logger: Logger): Interceptor {
  return transformErrors((error, req) => {
    if (error instanceof ConnectError) {
      if (error.code === Code.Internal || error.code === Code.Unknown) {
        logger.error("internal error", { procedure: req.url, error: error.cause ?? error });
        return new ConnectError("internal error", Code.Internal);
      }
      return error;
    }
    logger.error("internal error", { procedure: req.url, error });
    return new ConnectError("internal error", Code.Internal);
  });
}
