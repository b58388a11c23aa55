// ExecutionService alone: what the CLI talks to. Its own entry, so that a CLI command does not
// decode the descriptors of the runners' and storage's APIs, which it never calls.
export * from "./gen/rgrid/v1/execution_pb";
