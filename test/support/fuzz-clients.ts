// What both fuzz suites share: one client per protocol, credentials, and how an answer is read.
import { Agent } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";

export const FUZZ_PROTOCOLS = ["grpc", "connect-json", "connect-binary"] as const;
export type FuzzProtocol = (typeof FUZZ_PROTOCOLS)[number];

/**
 * With `isolated`, HTTP/1.1 requests use a connection of their own instead of the shared pool:
 * the server answers an over-limit request at once without reading its body, and drops the
 * connection under a client that may still be writing or about to reuse it.
 */
export function fuzzTransport(protocol: FuzzProtocol, baseUrl: string, { isolated = false } = {}): Transport {
  const nodeOptions = isolated ? { agent: new Agent({ keepAlive: false }) } : undefined;
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "connect-json":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, nodeOptions });
    case "connect-binary":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, nodeOptions });
  }
}

export const bearer = (secret: string): CallOptions => ({ headers: { authorization: `Bearer ${secret}` } });

/** The code a fuzz request was answered with, as a name, and the message that came with it. */
export function answerOf(error: unknown, overLimit: boolean): { got: string; message: string } {
  if (!(error instanceof ConnectError)) {
    return { got: "not a ConnectError", message: String(error) };
  }
  if (overLimit && isLocalWriteCut(error)) {
    // The server refused before reading the body and closed the connection while this client
    // was still writing it: the refusal, seen from the sending side.
    return { got: Code[Code.ResourceExhausted], message: `connection closed while sending: ${error.rawMessage}` };
  }
  return { got: Code[error.code], message: error.rawMessage };
}

/** A client-side failure to finish writing the request because the peer closed the connection. */
function isLocalWriteCut(error: ConnectError): boolean {
  const cause = error.cause as { code?: unknown; syscall?: unknown } | undefined;
  return (cause?.code === "EPIPE" || cause?.code === "ECONNRESET") && cause.syscall === "write";
}

/** How one malformed request was answered, against what its case expected. */
export interface FuzzOutcome<Rpc extends string = string> {
  rpc: Rpc;
  protocol: string;
  kind: string;
  expected: readonly string[];
  got: string;
  message: string;
}

/** A malformed request of either fuzz suite: what it is, what may answer it, how to send it. */
export interface FuzzCase<Rpc extends string, Client> {
  rpc: Rpc;
  kind: string;
  expected: readonly Code[];
  send(client: Client, options: CallOptions): Promise<unknown>;
}

/**
 * Sends `hostile` and records the answer. Over-limit requests get a connection of their own
 * (see fuzzTransport), so they cannot poison the shared clients of the well-behaved ones.
 */
export async function sendHostile<Rpc extends string, Client>(
  hostile: FuzzCase<Rpc, Client>,
  options: CallOptions,
  protocol: FuzzProtocol,
  clients: { shared: Client; isolated: () => Client },
): Promise<FuzzOutcome<Rpc>> {
  const overLimit = hostile.kind === "over request limit";
  const outcome = (got: string, message: string): FuzzOutcome<Rpc> => ({
    rpc: hostile.rpc,
    protocol,
    kind: hostile.kind,
    expected: hostile.expected.map((code) => Code[code]),
    got,
    message: message.slice(0, 300),
  });
  try {
    await hostile.send(overLimit ? clients.isolated() : clients.shared, { ...options, timeoutMs: 30_000 });
    return outcome("OK", "the malformed request was accepted");
  } catch (error) {
    const answer = answerOf(error, overLimit);
    return outcome(answer.got, answer.message);
  }
}
