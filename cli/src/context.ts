// What commands are given instead of reaching for globals: the server client, output, time.
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Execution, ExecutionService } from "@rgrid/proto/execution";
import { ExecutionNotFoundError } from "./errors";
import type { Resender } from "./resend";

export type ExecutionClient = Client<typeof ExecutionService>;

export interface Output {
  stdout(line: string): void;
  stderr(line: string): void;
  /** Progress shown in place on a terminal; absent when stderr is not one, so pipes stay clean. */
  status?: StatusLine;
}

/** One line of stderr that is rewritten rather than added to. */
export interface StatusLine {
  show(text: string): void;
  clear(): void;
}

/** Waiting and the time are injected so tests neither sleep nor depend on timing. */
export interface Clock {
  sleep(ms: number): Promise<void>;
  /** For times given relative to now (`retry --at 14:30`) and whether one is still ahead. */
  now(): Date;
}

/** Everything a command that talks to the server needs. */
export interface ServerContext {
  client: ExecutionClient;
  /** Wraps calls that are safe to re-send after a transport failure. */
  resend: Resender;
  output: Output;
  clock: Clock;
}

/** Runs a call about one execution, reporting NotFound as that execution being unknown. */
export async function aboutExecution<T>(executionId: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.NotFound) {
      throw new ExecutionNotFoundError(executionId);
    }
    throw error;
  }
}

/** GetExecution, re-sent after transport failures, with NotFound reported as an unknown execution. */
export async function fetchExecution(context: Pick<ServerContext, "client" | "resend">, executionId: string): Promise<Execution> {
  const { client, resend } = context;
  const { execution } = await aboutExecution(executionId, resend(() => client.getExecution({ executionId })));
  if (!execution) {
    throw new Error("the server's answer carried no execution");
  }
  return execution;
}
