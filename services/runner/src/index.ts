// What a launcher (e.g. the local stack) needs to embed a runner in its own process.

export { loadRunnerConfig } from "./config";
export type { RunnerConfig } from "./config";
export { createRunner } from "./runner";
export type { Runner, RunnerDeps } from "./runner";
export { detectRuntimes, RUNTIME_FAMILIES } from "./runtimes";
export type { RuntimeCatalog, ResolvedRuntime } from "./runtimes";
export { assembleRunner, firstUnsearchableAncestor, MissingRuntimeError, UnreachableWorkDirError } from "./assemble";
export type { AssembledRunner } from "./assemble";
export { probeSandbox, SandboxUnavailableError } from "./sandbox";
export type { SandboxCapabilities } from "./sandbox";
export { UnsafeWorkRootError } from "./work-root";
export { UidRangeTakenError } from "./uid-range";
