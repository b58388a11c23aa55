// ExecutionService alone, as its clients (the CLI, the console) use it: its own entry, so that a
// client does not decode the descriptors of the runners' and storage's APIs, which it never
// calls, nor the validation rules, which only the services enforce (buf.gen.yaml, gen-client).
// Its messages are the services' own by type name, on the wire and in JSON.
export * from "./gen-client/rgrid/v1/execution_pb";
