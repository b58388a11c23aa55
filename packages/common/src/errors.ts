import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "./logger";
import { requestIdKey } from "./request-id";

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
    // The request id matches this line to the RPC's own line (rpc-observer.ts).
    const requestId = req.contextValues.get(requestIdKey);
    const about = requestId === undefined ? { procedure: req.url } : { procedure: req.url, requestId };
    if (error instanceof ConnectError) {
      if (error.code === Code.Internal || error.code === Code.Unknown) {
        logger.error("internal error", { ...about, error: error.cause ?? error });
        return new ConnectError("internal error", Code.Internal);
      }
      return error;
    }
    logger.error("internal error", { ...about, error });
    return new ConnectError("internal error", Code.Internal);
  });
}

/**
 * The longest error message that leaves a service. Messages may quote what a client sent, and a
 * client can send megabytes; over gRPC the message travels in an HTTP/2 header (`grpc-message`),
 * where a long one does not fit and the client sees its call reset instead of the answer.
 */
export const MAX_ERROR_MESSAGE_CHARS = 300;

/**
 * `message` cut to MAX_ERROR_MESSAGE_CHARS, saying how much was cut, and well-formed (a lone
 * surrogate cannot be percent-encoded into `grpc-message`).
 */
export function boundMessage(message: string, maxChars = MAX_ERROR_MESSAGE_CHARS): string {
  if (message.length <= maxChars) {
    return wellFormed(message);
  }
  const cut = cutBefore(message, maxChars);
  return `${wellFormed(message.slice(0, cut))}… (${message.length - cut} more characters)`;
}

/** `maxChars`, or one less where that would split a surrogate pair. */
const cutBefore = (text: string, maxChars: number) => {
  const last = text.charCodeAt(maxChars - 1);
  return last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars;
};

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** String.prototype.toWellFormed, which ES2022 lacks: lone surrogates become U+FFFD. */
const wellFormed = (text: string) => text.replace(LONE_SURROGATE, "\uFFFD");

/** A client's value quoted in a message: at most `maxChars` of it, in JSON quotes. */
export function quoteInput(value: string, maxChars = 64): string {
  if (value.length <= maxChars) {
    return JSON.stringify(value);
  }
  return `${JSON.stringify(value.slice(0, cutBefore(value, maxChars)))}… (${value.length} characters)`;
}

/** The same error with its message bounded (see boundMessage); short messages are kept as they are. */
export function boundErrorMessage(error: ConnectError): ConnectError {
  const bounded = boundMessage(error.rawMessage);
  if (bounded === error.rawMessage) {
    return error;
  }
  const copy = new ConnectError(bounded, error.code, error.metadata, undefined, error.cause);
  copy.details = error.details;
  return copy;
}

/**
 * The outermost interceptor of every server (createConnectServer installs it): whatever error a
 * call ends with leaves with a bounded message.
 */
export function boundErrorMessages(): Interceptor {
  return transformErrors((error) => (error instanceof ConnectError ? boundErrorMessage(error) : error));
}
