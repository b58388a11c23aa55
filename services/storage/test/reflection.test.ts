import { newExecutionId } from "@rgrid/common";
import { GRPC_OVER_H2C, REFLECT_PROTOCOLS, bufCurl, listedLines } from "../../../test/support/buf-curl";
import { INTERNAL_TOKEN, startStorage } from "./server-harness";
import type { RunningStorage } from "./server-harness";

// Over the wire with the real `buf curl` and no copy of the protos: everything it knows of the
// API it learns from the server's reflection service, in both reflection versions.

let storage: RunningStorage;

beforeAll(async () => {
  storage = await startStorage();
});
afterAll(() => storage.stop());

describe.each(REFLECT_PROTOCOLS)("buf curl with --reflect-protocol %s", (reflectProtocol) => {
  const curl = (...args: string[]) => bufCurl([...GRPC_OVER_H2C, "--reflect-protocol", reflectProtocol, ...args]);
  const statObjects = (executionId: string) =>
    JSON.stringify({ executionId, refs: [{ kind: "OBJECT_KIND_SCRIPT", name: "process.py" }] });

  test("lists every method served, without the internal token", async () => {
    const listed = await curl("--list-methods", storage.running.url);
    expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
    expect(listedLines(listed)).toEqual(
      expect.arrayContaining([
        "rgrid.v1.StorageService/StatObjects",
        "rgrid.v1.StorageService/CreateUploadGrants",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  test("calls StorageService with the internal token, encoding and decoding by reflection alone", async () => {
    const executionId = newExecutionId();
    const stat = await curl("-H", `Authorization: Bearer ${INTERNAL_TOKEN}`, "-d", statObjects(executionId), `${storage.running.url}/rgrid.v1.StorageService/StatObjects`);
    expect(stat).toMatchObject({ exitCode: 0, stderr: "" });
    expect(JSON.parse(stat.stdout)).toEqual({ objects: [{ ref: { kind: "OBJECT_KIND_SCRIPT", name: "process.py" } }] });
  });

  test("reflection needs no token, and the call it encodes still does", async () => {
    const refused = await curl("-d", statObjects(newExecutionId()), `${storage.running.url}/rgrid.v1.StorageService/StatObjects`);
    expect(refused.exitCode).not.toBe(0);
    expect(JSON.parse(refused.stderr)).toMatchObject({ code: "unauthenticated", message: "missing bearer token" });

    const health = await curl("-d", "{}", `${storage.running.url}/grpc.health.v1.Health/Check`);
    expect(health).toMatchObject({ exitCode: 0, stderr: "" });
    expect(JSON.parse(health.stdout)).toEqual({ status: "SERVING" });
  });
});
