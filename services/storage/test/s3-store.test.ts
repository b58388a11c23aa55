import { newExecutionId } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import { minioClient } from "../src/backend";
import { systemClock } from "../src/clock";
import { objectKey } from "../src/keys";
import { StorageUnavailableError } from "../src/object-store";
import { createS3Store } from "../src/s3-store";
import type { S3rverFixture } from "./helpers";
import { startS3rver, uniqueBucketName } from "./helpers";
import { describeObjectStoreContract } from "./object-store-contract";

let s3: S3rverFixture;

beforeAll(async () => {
  s3 = await startS3rver();
});

afterAll(async () => {
  await s3.stop();
});

describeObjectStoreContract("s3 (s3rver)", async () => {
  const client = s3.client();
  const store = createS3Store({ client, presignClient: client, bucket: uniqueBucketName(), clock: systemClock });
  await store.ensureBucket("us-east-1");
  return { store, close: async () => undefined };
});

describe("s3 store", () => {
  it("creates the bucket when missing and accepts an existing one", async () => {
    const client = s3.client();
    const bucket = uniqueBucketName();
    const store = createS3Store({ client, presignClient: client, bucket, clock: systemClock });
    expect(await client.bucketExists(bucket)).toBe(false);
    await store.ensureBucket("us-east-1");
    expect(await client.bucketExists(bucket)).toBe(true);
    await store.ensureBucket("us-east-1");
  });

  it("presigns with the public endpoint while working through the internal one", async () => {
    const client = s3.client();
    const publicClient = minioClient("https://files.example.test", {
      accessKey: "S3RVER",
      secretKey: "S3RVER",
      region: "us-east-1",
    });
    const store = createS3Store({ client, presignClient: publicClient, bucket: uniqueBucketName(), clock: systemClock });
    const grant = await store.uploadGrant(objectKey(newExecutionId(), ObjectKind.INPUT, "a.txt"), 60);
    expect(grant.url.startsWith("https://files.example.test/")).toBe(true);
  });

  it("reports an unreachable backend as unavailable", async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const client = minioClient("http://127.0.0.1:1", { accessKey: "S3RVER", secretKey: "S3RVER", region: "us-east-1" });
    const store = createS3Store({ client, presignClient: client, bucket: "rgrid", clock: systemClock, deleteAttempts: 1 });
    const key = objectKey(newExecutionId(), ObjectKind.INPUT, "a.txt");
    await expect(store.stat(key)).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.copy(key, objectKey(newExecutionId(), ObjectKind.INPUT, "a.txt"))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    await expect(store.list(`executions/`)).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.listExecutions("", 10)).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});
