import { performance } from "node:perf_hooks";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { LogFormat } from "./log-format";
import type { Logger } from "./logger";
import type { RecordRpc } from "./metrics";
import { REQUEST_ID_HEADER, requestIdFor, requestIdKey } from "./request-id";

/** Every RPC gets a log line, or only those answered with an error. */
export type RpcLines = "all" | "errors";

/**
 * Production's JSON logs keep a line for every RPC; the readable format (`npm start`'s terminal)
 * only the RPCs answered with an error, or runners' heartbeats and claims would bury the rest.
 */
export function rpcLinesFor(format: LogFormat): RpcLines {
  return format === "json" ? "all" : "errors";
}

export interface RpcObserverOptions {
  /** Gets one line per RPC: requestId, rpc (service/method), code, durationMs. */
  logger: Logger;
  /** "all" unless told otherwise. */
  lines?: RpcLines;
  /** Counts the RPC and its duration (metrics.ts); absent when the server has no metrics. */
  recordRpc?: RecordRpc;
}

/** Codes that say the service failed rather than the request; their lines are warnings. */
const SERVICE_FAULTS = new Set([Code.Internal, Code.Unknown, Code.DataLoss, Code.Unavailable]);

/**
 * Logs and counts every RPC that reaches the service, under a request id: the client's
 * `x-request-id` when sane (request-id.ts), else a fresh one. The id is echoed in the answer's
 * `x-request-id` header and handed to the interceptors and handlers inside (requestIdKey).
 * Installed outermost by createConnectServer, so the code it records is the one the client gets
 * (canceled when it went away first). A streaming RPC is recorded when its stream ends, with the
 * stream's whole duration.
 */
export function observeRpcs(options: RpcObserverOptions): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const requestId = requestIdFor(req.header.get(REQUEST_ID_HEADER));
    req.contextValues.set(requestIdKey, requestId);
    const finish = (error: unknown) => {
      const code = error === undefined ? undefined : codeOf(error);
      const seconds = (performance.now() - started) / 1000;
      const codeName = code === undefined ? "ok" : codeToString(code);
      options.recordRpc?.({ service: req.service.typeName, method: req.method.name, code: codeName, seconds });
      const fields = {
        requestId,
        rpc: `${req.service.typeName}/${req.method.name}`,
        code: codeName,
        durationMs: Math.round(seconds * 10_000) / 10,
        ...(error instanceof ConnectError ? { message: error.rawMessage } : {}),
      };
      if (code !== undefined && SERVICE_FAULTS.has(code)) {
        options.logger.warn("rpc", fields);
      } else if (code !== undefined || options.lines !== "errors") {
        options.logger.info("rpc", fields);
      }
    };

    let res;
    try {
      res = await next(req);
    } catch (error) {
      finish(error);
      throw withRequestId(error, requestId);
    }
    res.header.set(REQUEST_ID_HEADER, requestId);
    if (!res.stream) {
      finish(req.signal.aborted ? whyAborted(req.signal) : undefined);
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        let outcome: { error: unknown } | undefined;
        try {
          yield* messages;
          outcome = { error: undefined };
        } catch (error) {
          outcome = { error };
          throw error;
        } finally {
          // Neither ended nor failed (the transport stopped reading), or ended by a handler that
          // stops quietly when its call is aborted: either way the client did not get it all.
          finish(outcome?.error ?? (outcome === undefined || req.signal.aborted ? whyAborted(req.signal) : undefined));
        }
      })(),
    };
  };
}

/**
 * Why a call's signal was aborted: its deadline passed or its stream was reset (connect-es gives
 * those as ConnectErrors), or else the client went away.
 */
function whyAborted(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError ? signal.reason : new ConnectError("the client went away", Code.Canceled);
}

/**
 * What the client is told: a ConnectError's own code; anything else is answered Internal by
 * connect-es (services hide those first, see hideUnknownErrors).
 */
function codeOf(error: unknown): Code {
  return error instanceof ConnectError ? error.code : Code.Internal;
}

/**
 * The error with the request id among the metadata the protocol sends with it. Anything but a
 * ConnectError is wrapped the way connect-es itself would answer it: Internal, message hidden.
 */
function withRequestId(error: unknown, requestId: string): ConnectError {
  const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
  connectError.metadata.set(REQUEST_ID_HEADER, requestId);
  return connectError;
}
