import { systemClock } from "../src/clock";
import { createS3Store } from "../src/s3-store";
import { expectAllOrNothingCopy, expectBatchCopyRefusesOnlyTheBrokenCopy, expectBatchGrantsAndCommits, expectCommittedUploadsImmutable, expectCompleteCopy } from "./copy-scenarios";
import type { S3rverFixture } from "./helpers";
import { startS3rver, uniqueBucketName } from "./helpers";
import type { RunningStorage } from "./server-harness";
import { startStorage } from "./server-harness";

let s3: S3rverFixture;
let storage: RunningStorage;

beforeAll(async () => {
  s3 = await startS3rver();
});

afterAll(async () => {
  await s3.stop();
});

beforeEach(async () => {
  const client = s3.client();
  const store = createS3Store({ client, presignClient: client, bucket: uniqueBucketName(), clock: systemClock });
  await store.ensureBucket("us-east-1");
  storage = await startStorage(store);
});

afterEach(async () => {
  await storage.stop();
});

describe("storage server on the S3 backend (s3rver)", () => {
  it("keeps committed uploads immutable: a late PUT through the grant never reaches the object", async () => {
    await expectCommittedUploadsImmutable(storage.grpc, { digestChecked: false });
  });

  it("copies inputs server-side, byte-identical", async () => {
    await expectCompleteCopy(storage.grpc);
  });

  it("fails CopyInputs with FailedPrecondition naming the missing input and copies nothing", async () => {
    await expectAllOrNothingCopy(storage.grpc);
  });

  it("refuses, in CopyInputsBatch, only the copy whose input is missing, leaving nothing of it, and makes the others", async () => {
    await expectBatchCopyRefusesOnlyTheBrokenCopy(storage.grpc);
  });

  it("grants uploads, commits them and grants their downloads for several executions in one call each", async () => {
    await expectBatchGrantsAndCommits(storage.grpc);
  });
});
