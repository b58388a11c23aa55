// The generated protobuf code, re-exported from one place so that services import
// `@rgrid/proto` instead of reaching into generated paths.
export * from "./gen/rgrid/v1/execution_pb";
export * from "./gen/rgrid/v1/runner_pb";
export * from "./gen/rgrid/v1/storage_pb";
export * from "./gen/grpc/health/v1/health_pb";
// Server reflection exists in two versions whose messages share their names: one namespace each.
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection_pb";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb";
