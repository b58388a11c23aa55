// One hop of the two-hop floor of `npm run bench:floor`: a bare connect-node server, each hop its
// own process, as execution-service and storage-service are. "front" answers RetryExecution by
// calling "back"'s CopyInputs with the same request rgrid sends and answering with a response
// the size of rgrid's; "back" answers CopyInputs with a response the size of storage-service's.
// Neither does anything rgrid skips: no authentication, no validation, no database, no files.
//
//   node bench/dist/floor-hop.js back <response.bin>
//   node bench/dist/floor-hop.js front <response.bin> <back url> <copy request.bin>
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fromBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import {
  CopyInputsRequestSchema,
  CopyInputsResponseSchema,
  ExecutionService,
  RetryExecutionResponseSchema,
  StorageService,
} from "@rgrid/proto";

function routesOf(mode: string, args: string[]): (router: ConnectRouter) => void {
  if (mode === "back") {
    const response = fromBinary(CopyInputsResponseSchema, readFileSync(args[0] as string));
    return (router) => router.service(StorageService, { copyInputs: () => response });
  }
  const response = fromBinary(RetryExecutionResponseSchema, readFileSync(args[0] as string));
  const copyRequest = fromBinary(CopyInputsRequestSchema, readFileSync(args[2] as string));
  // As execution-service reaches storage-service: Connect, binary, HTTP/2.
  const back = createClient(StorageService, createConnectTransport({ baseUrl: args[1] as string, httpVersion: "2", useBinaryFormat: true }));
  return (router) =>
    router.service(ExecutionService, {
      async retryExecution() {
        await back.copyInputs(copyRequest);
        return response;
      },
    });
}

const [mode = "", ...args] = process.argv.slice(2);
const server = http2.createServer(connectNodeAdapter({ routes: routesOf(mode, args) }));
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening url=http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
