// The generated protobuf code, re-exported from one place so that services import
// `@rgrid/proto` instead of reaching into generated paths.
export * from "./gen/rgrid/v1/execution_pb";
export * from "./gen/rgrid/v1/runner_pb";
export * from "./gen/rgrid/v1/storage_pb";
export * from "./gen/grpc/health/v1/health_pb";
