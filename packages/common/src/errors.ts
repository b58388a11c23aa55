import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "./logger";

/**
 * The last line of every service's error handling: errors the service's own error map did not
 * turn into a ConnectError reach the client as Internal with no details, and their cause is
 * logged here with the procedure that failed.
 */
export function hideUnknownErrors(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      if (error instanceof ConnectError) {
        if (error.code === Code.Internal || error.code === Code.Unknown) {
          logger.error("internal error", { procedure: req.url, error: error.cause ?? error });
          throw new ConnectError("internal error", Code.Internal);
        }
        throw error;
      }
      logger.error("internal error", { procedure: req.url, error });
      throw new ConnectError("internal error", Code.Internal);
    }
  };
}
