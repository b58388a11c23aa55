// The one place that decides what a run executes and with which environment. Sandbox wrappers
// (network namespace, resource limits, dropping privileges) are prefixes of this command line.

import type { ResolvedRuntime } from "./runtimes";

/** Everything needed to start one script process. */
export interface CommandSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface BuildCommandInput {
  runtime: ResolvedRuntime;
  /** The script's name relative to the working directory. */
  scriptName: string;
  args: readonly string[];
  /** The execution's own variables. */
  env: Readonly<Record<string, string>>;
  workDir: string;
}

/** The only PATH a script sees: system directories, nothing from the runner's environment. */
export const SCRIPT_PATH = "/usr/local/bin:/usr/bin:/bin";

export function buildCommand(input: BuildCommandInput): CommandSpec {
  return {
    command: input.runtime.interpreter,
    args: [scriptArgument(input.scriptName), ...input.args],
    env: scriptEnvironment(input),
    cwd: input.workDir,
  };
}

/**
 * Starts from nothing, so the runner's variables (tokens above all) never leak. Defaults the
 * execution may override come first; PATH and HOME come last because the sandbox depends on them.
 */
function scriptEnvironment(input: BuildCommandInput): Record<string, string> {
  return {
    LANG: "C.UTF-8",
    ...input.runtime.env,
    ...input.env,
    PATH: SCRIPT_PATH,
    HOME: input.workDir,
  };
}

/** A script called e.g. "-c" would otherwise be read by the interpreter as an option. */
function scriptArgument(scriptName: string): string {
  return scriptName.startsWith("-") ? `./${scriptName}` : scriptName;
}
