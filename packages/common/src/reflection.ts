import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { reflectionV1, reflectionV1alpha } from "@rgrid/proto";
import { createDescriptorIndex } from "./descriptor-index";
import type { IndexedFile } from "./descriptor-index";
import { quoteInput } from "./errors";

// gRPC server reflection (grpc.reflection.v1 and its older twin v1alpha, which older clients
// still speak): lets grpcurl, `buf curl` and Postman discover the API and encode calls without a
// copy of the protos. Both versions are the same messages under two package
// names, so one answerer serves both.

/** What one reflection request asks, as v1 and v1alpha both spell it. */
export type ReflectionQuestion =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The answer to one request, as v1 and v1alpha both spell it. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

interface ReflectionAnswerer {
  /**
   * The answers for one stream. A stream sends each file once, as gRPC's own servers do: a file
   * comes with those of its imports the stream has not sent yet (the file asked for always comes).
   */
  openStream(): (question: ReflectionQuestion) => ReflectionAnswer;
}

/** Every service the reflection answers about: the ones given, and the reflection services. */
function createReflectionAnswerer(services: readonly DescService[]): ReflectionAnswerer {
  const described = [...services, reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection];
  const index = createDescriptorIndex(described);
  const serviceList = described.map((service) => ({ name: service.typeName }));
  return {
    openStream() {
      const sent = new Set<string>();
      const filesAnswer = (file: IndexedFile | undefined, notFound: string): ReflectionAnswer =>
        file === undefined ? notFoundAnswer(notFound) : { case: "fileDescriptorResponse", value: { fileDescriptorProto: unsentClosure(file, sent) } };
      return (question) => {
        switch (question.case) {
          case "fileByFilename":
            return filesAnswer(index.fileByName(question.value), `unknown file ${quoteInput(question.value)}`);
          case "fileContainingSymbol":
            return filesAnswer(index.fileContainingSymbol(question.value), `unknown symbol ${quoteInput(question.value)}`);
          case "fileContainingExtension": {
            const { containingType, extensionNumber } = question.value;
            return filesAnswer(
              index.fileContainingExtension(containingType, extensionNumber),
              `no extension ${extensionNumber} of ${quoteInput(containingType)}`,
            );
          }
          case "allExtensionNumbersOfType": {
            const numbers = index.extensionNumbersOf(question.value);
            return numbers === undefined
              ? notFoundAnswer(`unknown message type ${quoteInput(question.value)}`)
              : { case: "allExtensionNumbersResponse", value: { baseTypeName: question.value, extensionNumber: numbers } };
          }
          case "listServices":
            return { case: "listServicesResponse", value: { service: serviceList } };
          case undefined:
            return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "the request asks nothing" } };
        }
      };
    },
  };
}

/**
 * Answers the reflection services (both versions) about `services` — which should be every
 * service this router serves — and about themselves. The descriptors are indexed now, once.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const answerer = createReflectionAnswerer(services);
  router.service(reflectionV1.ServerReflection, { serverReflectionInfo: (requests) => answerEach(requests, answerer) });
  router.service(reflectionV1alpha.ServerReflection, { serverReflectionInfo: (requests) => answerEach(requests, answerer) });
}

/** One response per request, in order, each echoing the request as the protocol says. */
async function* answerEach<Request extends { host: string; messageRequest: ReflectionQuestion }>(
  requests: AsyncIterable<Request>,
  answerer: ReflectionAnswerer,
): AsyncGenerator<{ validHost: string; originalRequest: Request; messageResponse: ReflectionAnswer }> {
  const answer = answerer.openStream();
  for await (const request of clientMessages(requests)) {
    yield { validHost: request.host, originalRequest: request, messageResponse: answer(request.messageRequest) };
  }
}

/**
 * The client's messages as they arrive. connect-es reports a request stream it cannot read — a
 * message that does not decode or decompress, an envelope cut short — as Internal, which the
 * error interceptors would log as a fault of ours and hide. The request guard (request-guard.ts)
 * does not read streaming requests, so here such a failure is named for what it is: the client's
 * (InvalidArgument, with connect-es's reason). A client that went away or sent too much keeps its
 * own code.
 */
async function* clientMessages<Request>(requests: AsyncIterable<Request>): AsyncGenerator<Request> {
  try {
    yield* requests;
  } catch (error) {
    const failure = ConnectError.from(error);
    throw failure.code === Code.Internal ? new ConnectError(failure.rawMessage, Code.InvalidArgument) : error;
  }
}

/** An unknown name is an answer on the stream, not the stream's end: the client may ask on. */
const notFoundAnswer = (message: string): ReflectionAnswer => ({
  case: "errorResponse",
  value: { errorCode: Code.NotFound, errorMessage: message },
});

/** `file` and its transitive imports, less the imports this stream has sent; marks them sent. */
function unsentClosure(file: IndexedFile, sent: Set<string>): Uint8Array[] {
  const answer: Uint8Array[] = [];
  const seen = new Set<string>([file.name]);
  const queue: IndexedFile[] = [file];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    if (next === file || !sent.has(next.name)) {
      answer.push(next.descriptor);
      sent.add(next.name);
    }
    for (const dependency of next.dependencies) {
      if (!seen.has(dependency.name)) {
        seen.add(dependency.name);
        queue.push(dependency);
      }
    }
  }
  return answer;
}
