// A script or input, once its execution's uploads are confirmed, can no longer be changed
// through the grant that uploaded it — so a retry always copies the bytes that were confirmed.
// On both backends, against the real processes.
import { createHash, randomBytes } from "node:crypto";
import { ExecutionService, ObjectKind, RunnerService, StorageService } from "@rgrid/proto";
import type { TransferGrant } from "@rgrid/proto";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { clientFor, failExecution } from "../support/executions";
import type { ExecutionClient, StorageClient } from "../support/executions";
import { printLogsOnFailure } from "../support/failure-logs";
import { startS3rver } from "../../services/storage/test/helpers";
import type { S3rverFixture } from "../../services/storage/test/helpers";

jest.setTimeout(120_000);

const describeFile = (name: string, bytes: Buffer) => ({
  name,
  sizeBytes: BigInt(bytes.length),
  sha256: createHash("sha256").update(bytes).digest("hex"),
});

async function put(grant: TransferGrant, body: Buffer): Promise<Response> {
  return fetch(grant.url, { method: grant.method, headers: grant.headers, body });
}

/** The bytes of an object, through a download grant from storage-service itself. */
async function storedBytes(storage: StorageClient, executionId: string, kind: ObjectKind, name: string): Promise<Buffer> {
  const [grant] = (await storage.createDownloadGrants({ executionId, refs: [{ kind, name }] })).grants;
  const response = await fetch(grant?.url ?? "", { headers: grant?.headers });
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

for (const backend of ["fs", "s3"] as const) {
  describe(`confirmed uploads on the ${backend} backend`, () => {
    let s3: S3rverFixture | undefined;
    let cluster: Cluster;
    let client: ExecutionClient;
    let storage: StorageClient;
    printLogsOnFailure("cluster", () => cluster?.logs);

    beforeAll(async () => {
      s3 = backend === "s3" ? await startS3rver() : undefined;
      cluster = await startCluster({
        storageEnv: s3
          ? {
              RGRID_STORAGE_BACKEND: "s3",
              RGRID_S3_ENDPOINT: s3.endpoint,
              RGRID_S3_ACCESS_KEY: "S3RVER",
              RGRID_S3_SECRET_KEY: "S3RVER-secret",
              RGRID_S3_BUCKET: "rgrid-immutable",
            }
          : {},
      });
      client = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
      storage = clientFor(StorageService, cluster.storage.url, cluster.internalToken);
    });
    afterAll(async () => {
      await cluster?.shutdown();
      await s3?.stop();
    });

    test("a PUT through the old grant after confirming changes nothing, and the retry copies the confirmed bytes", async () => {
      const script = Buffer.from("import sys; sys.exit(1)\n");
      const input = randomBytes(4096);
      const created = await client.createExecution({
        script: describeFile("main.py", script),
        runtime: "python",
        inputs: [describeFile("data.bin", input)],
        requestId: `immutable-${backend}`,
      });
      const id = created.execution?.id ?? "";
      const [scriptGrant, inputGrant] = [created.scriptUpload, ...created.inputUploads] as TransferGrant[];
      if (backend === "fs") {
        // Bytes other than the recorded ones are refused as they arrive.
        expect((await put(scriptGrant!, Buffer.from("import os; os.system('id')\n"))).status).toBe(400);
      }
      expect((await put(scriptGrant!, script)).status).toBe(200);
      expect((await put(inputGrant!, input)).status).toBe(200);
      await client.confirmUploads({ executionId: id });

      // The same grants, still within their time, with other bytes of the same sizes.
      const tamperedScript = Buffer.from("import os; os.system('')\n").subarray(0, script.length);
      const lateScript = await put(scriptGrant!, Buffer.concat([tamperedScript, Buffer.alloc(script.length - tamperedScript.length, 0x20)]));
      const lateInput = await put(inputGrant!, randomBytes(input.length));
      if (backend === "fs") {
        expect([lateScript.status, lateInput.status]).toEqual([409, 409]);
      }
      expect((await storedBytes(storage, id, ObjectKind.SCRIPT, "main.py")).equals(script)).toBe(true);
      expect((await storedBytes(storage, id, ObjectKind.INPUT, "data.bin")).equals(input)).toBe(true);

      await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), id);
      const { execution: retry } = await client.retryExecution({ executionId: id, requestId: `retry-immutable-${backend}` });
      expect((await storedBytes(storage, retry?.id ?? "", ObjectKind.SCRIPT, "main.py")).equals(script)).toBe(true);
      expect((await storedBytes(storage, retry?.id ?? "", ObjectKind.INPUT, "data.bin")).equals(input)).toBe(true);
    });
  });
}
