// What a launcher (e.g. the local stack) needs to embed a runner in its own process, and a
// benchmark to run scripts exactly as a runner does.

export { loadRunnerConfig } from "./config";
export type { RunnerConfig } from "./config";
export { createRunner } from "./runner";
export type { Runner, RunnerDeps } from "./runner";
export { detectRuntimes, RUNTIME_FAMILIES } from "./runtimes";
export type { RuntimeCatalog, ResolvedRuntime } from "./runtimes";
export { assembleRunner, firstUnsearchableAncestor, MissingRuntimeError, UnreachableWorkDirError } from "./assemble";
export type { AssembledRunner } from "./assemble";
export { probeSandbox, SandboxUnavailableError, setprivArgs } from "./sandbox";
export type { SandboxCapabilities } from "./sandbox";
export { UnsafeWorkRootError } from "./work-root";
export { UidRangeTakenError } from "./uid-range";
// The runner's own command line and process handling, for measuring its floor (bench/trivial.ts).
export { buildCommand } from "./command";
export { runProcess } from "./process-runner";
