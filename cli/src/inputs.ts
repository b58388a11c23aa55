// Which arguments of `rgrid run` are input files, what they are called on the runner, and how
// the arguments must read there so the script finds them.
import { stat } from "node:fs/promises";
import { basename, isAbsolute, resolve } from "node:path";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { relativePathProblem } from "@rgrid/common/paths";
import { UsageError } from "./errors";
import { pathInside } from "./path-inside";

export interface PlannedInput {
  /** Path inside the execution's working directory, '/' separated. */
  name: string;
  /** Where the file is on this machine. */
  localPath: string;
}

export interface InputPlan {
  /** The arguments as the script will receive them. */
  args: string[];
  inputs: PlannedInput[];
}

/**
 * Every argument naming an existing file becomes an input. A relative path inside `cwd` keeps
 * its (normalised) path, so the argument works unchanged in the runner's working directory;
 * any other file lands at the top of that directory and its argument becomes its base name.
 */
export async function planInputs(args: readonly string[], cwd: string): Promise<InputPlan> {
  const byName = new Map<string, string>();
  const plannedArgs: string[] = [];
  for (const arg of args) {
    const localPath = resolve(cwd, arg);
    if (arg === "" || !(await isFile(localPath))) {
      plannedArgs.push(arg);
      continue;
    }
    const inside = isAbsolute(arg) ? undefined : pathInside(cwd, localPath);
    const name = inside ?? basename(localPath);
    const problem = relativePathProblem(name);
    if (problem !== undefined) {
      throw new UsageError(`input file ${arg} cannot be sent: its name ${problem}`);
    }
    const earlier = byName.get(name);
    if (earlier !== undefined && earlier !== localPath) {
      throw new UsageError(
        `input files ${earlier} and ${localPath} would both be named ${name} on the runner. ` +
          `Rename one, or pass them as paths inside the current directory`,
      );
    }
    byName.set(name, localPath);
    plannedArgs.push(inside === undefined ? name : arg);
  }
  return {
    args: plannedArgs,
    inputs: [...byName].map(([name, localPath]) => ({ name, localPath })),
  };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    // Not there or not readable: an ordinary argument, passed through as written.
    return false;
  }
}
