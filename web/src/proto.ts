// The API's generated types and service descriptor, imported from the TypeScript source that
// `buf generate` writes (not @rgrid/proto's CommonJS dist) so the bundler can tree-shake it.
export * from "../../packages/proto/src/gen/rgrid/v1/execution_pb";
