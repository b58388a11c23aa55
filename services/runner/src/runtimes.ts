// Which interpreters this runner has, and how an execution's runtime name ("python",
// "python:3.11", "node") maps onto one of them.

import { execFileSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import * as path from "node:path";

export const RUNTIME_FAMILIES = ["python", "node"] as const;
export type RuntimeFamily = (typeof RUNTIME_FAMILIES)[number];

/** An interpreter ready to run a script, with the variables its scripts need. */
export interface ResolvedRuntime {
  family: RuntimeFamily;
  interpreter: string;
  /** Added to the script's environment. */
  env: Readonly<Record<string, string>>;
}

export interface RuntimeCatalog {
  /** The runtime names advertised to execution-service. */
  readonly names: readonly string[];
  /**
   * The interpreter for `requested` (the execution's runtime, e.g. "python:3.11"), which
   * execution-service matched to `runtimeName`; undefined when this runner does not have it.
   */
  resolve(requested: string, runtimeName: string): ResolvedRuntime | undefined;
}

export interface DetectRuntimesOptions {
  /** The runner's own PATH, in the usual colon-separated form. */
  searchPath: string;
  /** Families to offer; undefined offers every family that is found. */
  wanted?: readonly string[];
  /** The Node binary scripts run on; the runner's own, so its version is known to work. */
  nodeBinary: string;
  /**
   * Command prefix that runs a program as the user scripts run as (e.g. setpriv to a slot uid):
   * an interpreter that user cannot execute (say, below root's 0700 home) is not offered.
   */
  runAs?: readonly string[];
}

export interface DetectedRuntimes {
  catalog: RuntimeCatalog;
  /** Wanted families that were not found. */
  missing: string[];
}

const PYTHON_ENV = {
  // Output must reach the log as it is printed, not when a block buffer fills.
  PYTHONUNBUFFERED: "1",
  // __pycache__ directories would otherwise show up as output files of the execution.
  PYTHONDONTWRITEBYTECODE: "1",
};

const VERSION_PATTERN = /^\d+(\.\d+)?$/;

export function detectRuntimes(options: DetectRuntimesOptions): DetectedRuntimes {
  const wanted = options.wanted ?? RUNTIME_FAMILIES;
  const runAs = options.runAs ?? [];
  const python = findPython("python3", options.searchPath, runAs);
  const available = new Map<RuntimeFamily, string>();
  if (python !== undefined) {
    available.set("python", python);
  }
  if (runAs.length === 0 || runsAs(runAs, options.nodeBinary, ["-e", "0"]) !== undefined) {
    available.set("node", options.nodeBinary);
  }

  const offered = RUNTIME_FAMILIES.filter((family) => wanted.includes(family) && available.has(family));
  const missing = wanted.filter((name) => !offered.includes(name as RuntimeFamily));

  const versionedPythons = new Map<string, string | undefined>();
  const versionedPython = (version: string): string | undefined => {
    if (!versionedPythons.has(version)) {
      versionedPythons.set(version, findPython(`python${version}`, options.searchPath, runAs));
    }
    return versionedPythons.get(version);
  };

  const resolve = (requested: string, runtimeName: string): ResolvedRuntime | undefined => {
    const [family, version] = splitRuntime(requested);
    if (family !== runtimeName || !offered.includes(family as RuntimeFamily)) {
      return undefined;
    }
    switch (family as RuntimeFamily) {
      case "python": {
        // A versioned request prefers that exact interpreter and settles for python3 otherwise,
        // as the runtime name promised execution-service.
        const versioned =
          version !== undefined && VERSION_PATTERN.test(version)
            ? versionedPython(version)
            : undefined;
        return { family: "python", interpreter: versioned ?? (available.get("python") as string), env: PYTHON_ENV };
      }
      case "node":
        return { family: "node", interpreter: options.nodeBinary, env: {} };
    }
  };

  return { catalog: { names: offered, resolve }, missing };
}

function splitRuntime(requested: string): [string, string | undefined] {
  const colon = requested.indexOf(":");
  return colon < 0 ? [requested, undefined] : [requested.slice(0, colon), requested.slice(colon + 1)];
}

/**
 * The real interpreter behind `name` on the search path. Version managers (pyenv, asdf) put
 * shims on PATH that only work with their own environment variables, which scripts never get,
 * so the interpreter is asked where it really lives.
 */
function findPython(name: string, searchPath: string, runAs: readonly string[]): string | undefined {
  for (const candidate of findExecutables(name, searchPath)) {
    // A shim for a version that is not installed fails here, as does an interpreter the script
    // user may not execute: the next one on the path may still do.
    const executable = runsAs(runAs, candidate, ["-c", "import sys; print(sys.executable)"])?.trim();
    if (executable !== undefined && path.isAbsolute(executable)) {
      return executable;
    }
  }
  return undefined;
}

/** The program's stdout when it ran successfully (as the script user, with `runAs`). */
function runsAs(runAs: readonly string[], program: string, args: string[]): string | undefined {
  const [command, ...prefixArgs] = [...runAs, program, ...args];
  try {
    return execFileSync(command, prefixArgs, { encoding: "utf8", timeout: 10_000, cwd: "/", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

/** The first executable file called `name` on `searchPath`, like a shell's lookup. */
export function findExecutable(name: string, searchPath: string): string | undefined {
  return findExecutables(name, searchPath)[0];
}

/** Every executable file called `name` on `searchPath`, in search order. */
function findExecutables(name: string, searchPath: string): string[] {
  const found: string[] = [];
  for (const dir of searchPath.split(path.delimiter)) {
    if (!path.isAbsolute(dir)) {
      // Relative PATH entries would depend on the runner's cwd; never trust them.
      continue;
    }
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile() && !found.includes(candidate)) {
        found.push(candidate);
      }
    } catch {
      // not here; keep looking
    }
  }
  return found;
}
