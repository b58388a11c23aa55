import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import type { DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_descriptor,
  file_google_protobuf_timestamp,
} from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { Health, reflectionV1, reflectionV1alpha } from "@rgrid/proto";
import { registerReflection } from "../src/reflection";
import type { ReflectionQuestion } from "../src/reflection";

// The answers of server reflection, asked in memory through a real client of each version, about
// a small made-up API: probe.proto imports shared.proto (which imports timestamp.proto) and
// descriptor.proto, nests a message and an enum, and declares two extensions.

const { OPTIONAL: LABEL_OPTIONAL } = FieldDescriptorProto_Label;
const { MESSAGE: TYPE_MESSAGE, STRING: TYPE_STRING } = FieldDescriptorProto_Type;

const sharedProto = create(FileDescriptorProtoSchema, {
  name: "probe/v1/shared.proto",
  package: "probe.v1",
  syntax: "proto3",
  dependency: ["google/protobuf/timestamp.proto"],
  messageType: [{ name: "Shared", field: [{ name: "at", number: 1, label: LABEL_OPTIONAL, type: TYPE_MESSAGE, typeName: ".google.protobuf.Timestamp" }] }],
});

const probeProto = create(FileDescriptorProtoSchema, {
  name: "probe/v1/probe.proto",
  package: "probe.v1",
  syntax: "proto3",
  dependency: ["google/protobuf/descriptor.proto", "probe/v1/shared.proto"],
  messageType: [
    {
      name: "Outer",
      nestedType: [{ name: "Inner", enumType: [{ name: "Depth", value: [{ name: "DEPTH_UNSPECIFIED", number: 0 }] }] }],
      extension: [{ name: "inner_note", number: 50002, label: LABEL_OPTIONAL, type: TYPE_STRING, extendee: ".google.protobuf.FieldOptions" }],
    },
  ],
  extension: [{ name: "note", number: 50001, label: LABEL_OPTIONAL, type: TYPE_STRING, extendee: ".google.protobuf.FieldOptions" }],
  service: [{ name: "Probe", method: [{ name: "Ask", inputType: ".probe.v1.Outer", outputType: ".probe.v1.Shared" }] }],
});

const imports: Record<string, unknown> = {
  "probe/v1/shared.proto": sharedProto,
  "google/protobuf/descriptor.proto": file_google_protobuf_descriptor,
  "google/protobuf/timestamp.proto": file_google_protobuf_timestamp,
};
const Probe = createFileRegistry(probeProto, (name) => imports[name] as typeof sharedProto | undefined).getService("probe.v1.Probe") as DescService;

/** A request as either version takes it. */
type Question = { host?: string; messageRequest?: ReflectionQuestion };

/** One stream of v1 (or v1alpha) reflection: the questions in order, and every answer. */
async function askOnOneStream(questions: Question[], version: "v1" | "v1alpha" = "v1") {
  const transport = createRouterTransport((router) => registerReflection(router, [Probe, Health]));
  async function* sent() {
    yield* questions;
  }
  const answers = [];
  if (version === "v1") {
    for await (const answer of createClient(reflectionV1.ServerReflection, transport).serverReflectionInfo(sent())) {
      answers.push(answer);
    }
  } else {
    for await (const answer of createClient(reflectionV1alpha.ServerReflection, transport).serverReflectionInfo(sent())) {
      answers.push(answer);
    }
  }
  return answers;
}

/** The names of the files an answer carries, or its error. */
function filesOf(answer: { messageResponse: { case?: string; value?: unknown } }): string[] | { errorCode: number } {
  const response = answer.messageResponse;
  if (response.case === "errorResponse") {
    return { errorCode: (response.value as { errorCode: number }).errorCode };
  }
  expect(response.case).toBe("fileDescriptorResponse");
  return (response.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

const ALL_PROBE_FILES = ["probe/v1/probe.proto", "google/protobuf/descriptor.proto", "probe/v1/shared.proto", "google/protobuf/timestamp.proto"];

test.each(["v1", "v1alpha"] as const)("%s lists the services given and both reflection services", async (version) => {
  const [answer] = await askOnOneStream([{ host: "api.example", messageRequest: { case: "listServices", value: "*" } }], version);
  expect(answer?.validHost).toBe("api.example");
  expect(answer?.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
  expect(answer?.messageResponse.case).toBe("listServicesResponse");
  const names = answer?.messageResponse.case === "listServicesResponse" ? answer.messageResponse.value.service.map((service) => service.name) : [];
  expect(names).toEqual(["probe.v1.Probe", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);
});

test.each([
  ["a service", "probe.v1.Probe"],
  ["a method", "probe.v1.Probe.Ask"],
  ["a message", "probe.v1.Outer"],
  ["a nested message", "probe.v1.Outer.Inner"],
  ["an enum nested twice", "probe.v1.Outer.Inner.Depth"],
  ["an extension", "probe.v1.note"],
  ["an extension nested in a message", "probe.v1.Outer.inner_note"],
])("the symbol of %s finds its file, with every file it imports", async (_kind, symbol) => {
  const [answer] = await askOnOneStream([{ messageRequest: { case: "fileContainingSymbol", value: symbol } }]);
  expect(filesOf(answer!)).toEqual(ALL_PROBE_FILES);
});

test("the files sent are enough for a client to resolve every type of the API", async () => {
  const [answer] = await askOnOneStream([{ messageRequest: { case: "fileContainingSymbol", value: "probe.v1.Probe" } }]);
  const sent = answer?.messageResponse.case === "fileDescriptorResponse" ? answer.messageResponse.value.fileDescriptorProto : [];
  const files = new Map(sent.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes)).map((file) => [file.name, file]));
  const registry = createFileRegistry(files.get("probe/v1/probe.proto")!, (name) => files.get(name));
  expect(registry.getService("probe.v1.Probe")?.method.ask?.output.field.at?.message?.typeName).toBe("google.protobuf.Timestamp");
  expect(registry.getMessage("probe.v1.Outer.Inner")).toBeDefined();
});

test("a symbol of the health and reflection protos finds their own file", async () => {
  const answers = await askOnOneStream([
    { messageRequest: { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" } },
    { messageRequest: { case: "fileContainingSymbol", value: "grpc.reflection.v1alpha.ServerReflection" } },
  ]);
  expect(answers.map(filesOf)).toEqual([["grpc/health/v1/health.proto"], ["grpc/reflection/v1alpha/reflection.proto"]]);
});

test("unknown names are NotFound answers, and the stream goes on answering", async () => {
  const answers = await askOnOneStream([
    { messageRequest: { case: "fileContainingSymbol", value: "probe.v1.Missing" } },
    { messageRequest: { case: "fileContainingSymbol", value: "probe.v1.Probe.Missing" } },
    { messageRequest: { case: "fileByFilename", value: "probe/v1/missing.proto" } },
    { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.FieldOptions", extensionNumber: 49999 } } },
    { messageRequest: { case: "fileContainingExtension", value: { containingType: "probe.v1.Missing", extensionNumber: 50001 } } },
    { messageRequest: { case: "allExtensionNumbersOfType", value: "probe.v1.Missing" } },
    { messageRequest: { case: "fileByFilename", value: "probe/v1/shared.proto" } },
  ]);
  const notFound = { errorCode: Code.NotFound };
  expect(answers.map(filesOf)).toEqual([notFound, notFound, notFound, notFound, notFound, notFound, ["probe/v1/shared.proto", "google/protobuf/timestamp.proto"]]);
  expect(answers[0]?.messageResponse).toEqual(
    expect.objectContaining({ value: expect.objectContaining({ errorMessage: 'unknown symbol "probe.v1.Missing"' }) }),
  );
});

test("a request that asks nothing is an InvalidArgument answer", async () => {
  const [answer] = await askOnOneStream([{ host: "api.example" }]);
  expect(answer?.messageResponse).toEqual(expect.objectContaining({ case: "errorResponse", value: expect.objectContaining({ errorCode: Code.InvalidArgument }) }));
});

test("a stream sends each import once, and the file asked for every time", async () => {
  const answers = await askOnOneStream([
    { messageRequest: { case: "fileByFilename", value: "probe/v1/shared.proto" } },
    { messageRequest: { case: "fileByFilename", value: "probe/v1/probe.proto" } },
    { messageRequest: { case: "fileByFilename", value: "probe/v1/shared.proto" } },
  ]);
  expect(answers.map(filesOf)).toEqual([
    ["probe/v1/shared.proto", "google/protobuf/timestamp.proto"],
    ["probe/v1/probe.proto", "google/protobuf/descriptor.proto"],
    ["probe/v1/shared.proto"],
  ]);
  // A new stream starts afresh.
  const [again] = await askOnOneStream([{ messageRequest: { case: "fileByFilename", value: "probe/v1/shared.proto" } }]);
  expect(filesOf(again!)).toEqual(["probe/v1/shared.proto", "google/protobuf/timestamp.proto"]);
});

test("extensions are found by their target and number, and listed by target", async () => {
  const answers = await askOnOneStream([
    { messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.FieldOptions", extensionNumber: 50002 } } },
    { messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.FieldOptions" } },
    { messageRequest: { case: "allExtensionNumbersOfType", value: "probe.v1.Outer" } },
  ]);
  expect(filesOf(answers[0]!)).toEqual(ALL_PROBE_FILES);
  expect(answers.slice(1).map((answer) => answer.messageResponse)).toEqual([
    { case: "allExtensionNumbersResponse", value: expect.objectContaining({ baseTypeName: "google.protobuf.FieldOptions", extensionNumber: [50001, 50002] }) },
    { case: "allExtensionNumbersResponse", value: expect.objectContaining({ baseTypeName: "probe.v1.Outer", extensionNumber: [] }) },
  ]);
});
