// The generated protobuf code, re-exported from one place so that services import
// `@rgrid/proto` instead of reaching into generated paths.
export * from "./gen/rgrid/v1/execution_pb";
export * from "./gen/rgrid/v1/runner_pb";
export * from "./gen/rgrid/v1/storage_pb";
// The predefined validation rules the protos share: validators need the file (its extensions).
export { file_rgrid_v1_rules } from "./gen/rgrid/v1/rules_pb";
// protovalidate's own messages (buf.validate): rule options, and the Violations detail that
// InvalidArgument refusals carry. A namespace, as its names (field, message, Rule) are generic.
export * as bufValidate from "./gen/buf/validate/validate_pb";
export * from "./gen/grpc/health/v1/health_pb";
// Server reflection exists in two versions whose messages share their names: one namespace each.
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection_pb";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb";
