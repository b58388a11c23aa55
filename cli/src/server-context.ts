// Builds what every command that talks to the server is given, once the connection is known.
import type { Transport } from "@connectrpc/connect";
import { createExecutionClient } from "./client";
import type { Clock, Output, ServerContext } from "./context";
import { createResender } from "./resend";
import type { ResendPolicy } from "./resend";

export function createServerContext(deps: {
  transport: Transport;
  resendPolicy: ResendPolicy;
  output: Output;
  clock: Clock;
}): ServerContext {
  const { output, clock } = deps;
  return {
    client: createExecutionClient(deps.transport),
    resend: createResender({ policy: deps.resendPolicy, sleep: clock.sleep, warn: output.stderr }),
    output,
    clock,
  };
}
