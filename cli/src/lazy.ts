// Modules loaded only when an invocation needs them. Loading the RPC stack (protobuf runtime,
// Connect, generated code) costs more than starting Node itself on a slow machine, so `--help`
// and `init` must never pay for it, and `retry` or `status` must not pay for upload code either.
// `require` rather than `import()`: in CommonJS output TypeScript keeps `import()` as an ES module
// load, which is slower and resolves differently. The `typeof import` keeps every call typed.
/* eslint-disable @typescript-eslint/no-require-imports */

export const load = {
  initCommand: () => require("./commands/init") as typeof import("./commands/init"),
  runCommand: () => require("./commands/run") as typeof import("./commands/run"),
  statusCommand: () => require("./commands/status") as typeof import("./commands/status"),
  logsCommand: () => require("./commands/logs") as typeof import("./commands/logs"),
  listCommand: () => require("./commands/list") as typeof import("./commands/list"),
  retryCommand: () => require("./commands/retry") as typeof import("./commands/retry"),
  retryBatchCommand: () => require("./commands/retry-batch") as typeof import("./commands/retry-batch"),
  retryWhereCommand: () => require("./commands/retry-where") as typeof import("./commands/retry-where"),
  scriptUpload: () => require("./script-upload") as typeof import("./script-upload"),
  readline: () => require("node:readline/promises") as typeof import("node:readline/promises"),
  retryConditions: () => require("./retry-conditions") as typeof import("./retry-conditions"),
  cancelCommand: () => require("./commands/cancel") as typeof import("./commands/cancel"),
  downloadCommand: () => require("./commands/download") as typeof import("./commands/download"),
  diffCommand: () => require("./commands/diff") as typeof import("./commands/diff"),
  historyCommand: () => require("./commands/history") as typeof import("./commands/history"),
  auditCommand: () => require("./commands/audit") as typeof import("./commands/audit"),
  auditView: () => require("./audit-view") as typeof import("./audit-view"),
  serverContext: () => require("./server-context") as typeof import("./server-context"),
  transport: () => require("./client") as typeof import("./client"),
  failures: () => require("./failures") as typeof import("./failures"),
  present: () => require("./present") as typeof import("./present"),
};
