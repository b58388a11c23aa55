// The production shape for end-to-end tests: a grid on a scratch PostgreSQL database with its
// objects in a bucket on s3rver (standing in for MinIO), with a client to read the bucket
// behind the services' backs.
import type { Client as MinioClient } from "minio";
import { startS3rver } from "../../services/storage/test/helpers";
import type { S3rverFixture } from "../../services/storage/test/helpers";
import { s3StorageEnv } from "./bucket";
import { startTestGrid } from "./grid";
import type { TestGrid } from "./grid";
import { createScratchDatabase, postgresServerUrl } from "./postgres";
import type { ScratchDatabase } from "./postgres";

export interface ProductionGrid {
  grid: TestGrid;
  /** The scratch database's URL, for reading rows directly. */
  databaseUrl: string;
  /** A client of the s3rver the objects are in, and the bucket's name. */
  bucket: MinioClient;
  bucketName: string;
  stop(): Promise<void>;
}

/** A grid on PostgreSQL (RGRID_TEST_POSTGRES_URL) and S3, with `executionEnv` for execution-service. */
export async function startProductionGrid(bucketName: string, executionEnv: Record<string, string> = {}): Promise<ProductionGrid> {
  let database: ScratchDatabase | undefined;
  let s3: S3rverFixture | undefined;
  const stop = async () => {
    await s3?.stop();
    await database?.drop();
  };
  try {
    database = await createScratchDatabase(postgresServerUrl ?? "");
    s3 = await startS3rver();
    const grid = await startTestGrid({ databaseUrl: database.url, storageEnv: s3StorageEnv(s3.endpoint, bucketName), executionEnv });
    return {
      grid,
      databaseUrl: database.url,
      bucket: s3.client(),
      bucketName,
      async stop() {
        await grid.shutdown();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
