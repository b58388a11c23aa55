// The Connect client the CLI talks to ExecutionService with: HTTP/1.1 (works through any proxy
// and against the same port browsers use), every request carrying the bearer key.
import { createClient } from "@connectrpc/connect";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { bearerAuth } from "@rgrid/common/client";
import { ExecutionService } from "@rgrid/proto/execution";
import type { Connection } from "./config";
import type { ExecutionClient } from "./context";

export function createServerTransport(connection: Connection): Transport {
  return createConnectTransport({
    baseUrl: connection.apiUrl,
    httpVersion: "1.1",
    // Binary protobuf: smaller and cheaper to encode and decode than JSON, for the same API.
    useBinaryFormat: true,
    interceptors: [bearerAuth(connection.apiKey)],
  });
}

export function createExecutionClient(transport: Transport): ExecutionClient {
  return createClient(ExecutionService, transport);
}
