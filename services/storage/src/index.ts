// The storage service as a library, for processes that embed it (the local grid) and for tests.
export { openBackend, minioClient } from "./backend";
export type { Backend, BackendContext } from "./backend";
export { systemClock } from "./clock";
export type { Clock } from "./clock";
export { loadStorageConfig } from "./config";
export type { FileSystemBackendConfig, S3BackendConfig, StorageConfig } from "./config";
export { createFileSystemStore } from "./fs-store";
export { createS3Store } from "./s3-store";
export type { ObjectStore, ObjectGrant, StoredExecutionSummary, StoredObject } from "./object-store";
export { createStorageServer } from "./server";
export type { StorageServerDeps } from "./server";
export { storageCodeRules } from "./validation";
