// Which isolation measures work on this machine. Probed once when the runner starts, by actually
// trying each one, so that every run pays only for the wrapper itself and nothing is assumed.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { ResourceLimits, SandboxConfig } from "./config";
import { PID_NAMESPACE_INIT } from "./pid-init";
import { findExecutable } from "./runtimes";

/** What the runner applies to every run; each optional part is absent when it does not work here. */
export interface SandboxCapabilities {
  limits: ResourceLimits;
  /**
   * How to start namespaces; absent when no namespace can be created. `pid`: a PID namespace with
   * its own /proc, whose init is `perl` running PID_NAMESPACE_INIT.
   */
  unshare?: { binary: string; userNamespace: boolean; network: boolean; privateTmp: boolean; ipc: boolean; pid: boolean };
  /** The shell and mount binary that set up the namespace and join the cgroups. */
  shell: string;
  /** Sets the script's own environment as the last step before the interpreter. */
  env: string;
  mount?: string;
  /** Runs the PID namespace's init; present exactly when `unshare.pid` is true. */
  perl?: string;
  prlimit?: string;
  /**
   * Present when the runner is root and can run scripts as per-slot uids. The base is the
   * configured one; the runner claims its actual range at start (uid-range.ts).
   */
  dropPrivileges?: { setpriv: string; uidBase: number; uidBaseExplicit: boolean };
  /**
   * Where execution cgroups are made, per controller. As probed: the rgrid directory shared by
   * the runners of this machine, which a runner replaces at start with its own cgroup below it.
   */
  cgroups: { memory?: string; pids?: string };
  /** Each measure that was configured but does not work here, in words. */
  warnings: string[];
}

export class SandboxUnavailableError extends Error {
  constructor(readonly missing: readonly string[]) {
    super(
      `RGRID_RUNNER_ISOLATION=required, but these measures are not possible on this machine:\n  - ${missing.join("\n  - ")}\n` +
        "fix them, or set RGRID_RUNNER_ISOLATION=available to run with what works (each run then says what is missing)",
    );
    this.name = "SandboxUnavailableError";
  }
}

/** Directories every user may write to; each run gets its own empty copy of them. */
export const SHARED_WRITABLE_DIRS = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"] as const;

export interface ProbeOptions {
  config: SandboxConfig;
  /** The runner's own PATH, searched for the sandbox tools. */
  searchPath: string;
  isRoot: boolean;
}

/** Throws SandboxUnavailableError when isolation is required and a measure is missing. */
export function probeSandbox(options: ProbeOptions): SandboxCapabilities {
  const { config, searchPath, isRoot } = options;
  const warnings: string[] = [];
  const tool = (name: string) => findExecutable(name, searchPath);
  const shell = tool("sh") ?? "/bin/sh";
  const env = tool("env") ?? "/usr/bin/env";
  const mount = tool("mount");
  const perl = tool("perl");

  const unshare = probeNamespaces({ binary: tool("unshare"), shell, mount, perl, isRoot }, warnings);

  const prlimitBinary = tool("prlimit");
  const prlimit = prlimitBinary !== undefined && succeeds(prlimitBinary, ["--cpu=1:2", "--core=0", "--", "true"]) ? prlimitBinary : undefined;
  if (prlimit === undefined) {
    warnings.push("prlimit is not available: CPU time, file size, process and open-file limits are not applied");
  }

  let dropPrivileges: SandboxCapabilities["dropPrivileges"];
  const setpriv = tool("setpriv");
  if (!isRoot) {
    warnings.push("the runner is not root: scripts run as the runner's own user, not a separate unprivileged one");
  } else if (setpriv === undefined || !succeeds(setpriv, [...setprivArgs(config.uidBase), "true"])) {
    warnings.push("setpriv cannot switch users: scripts run as root");
  } else {
    dropPrivileges = { setpriv, uidBase: config.uidBase, uidBaseExplicit: config.uidBaseExplicit };
  }

  const memory = probeCgroup(path.join(config.cgroupRoot, "memory"), "memory.limit_in_bytes", String(config.limits.memoryBytes));
  if (memory === undefined) {
    warnings.push(`no writable cgroup v1 memory controller at ${path.join(config.cgroupRoot, "memory")}: memory is not limited`);
  }
  const pids = probeCgroup(path.join(config.cgroupRoot, "pids"), "pids.max", String(config.limits.maxProcesses));
  if (pids === undefined && memory === undefined) {
    warnings.push("no writable cgroup: processes a script detaches from its process group may outlive the run");
  }

  if (prlimit !== undefined && dropPrivileges === undefined) {
    warnings.push(
      "no per-script process limit (RLIMIT_NPROC needs a uid of its own per slot): " +
        (pids === undefined ? "the number of processes a script starts is not limited" : "only the pids cgroup limits processes"),
    );
  }
  if (config.isolation === "required" && warnings.length > 0) {
    throw new SandboxUnavailableError(warnings);
  }
  return {
    limits: config.limits,
    unshare,
    shell,
    env,
    mount,
    perl: unshare?.pid === true ? perl : undefined,
    prlimit,
    dropPrivileges,
    cgroups: { memory, pids },
    warnings,
  };
}

/** The setpriv options that turn root into slot uid `uid` for good. */
export function setprivArgs(uid: number): string[] {
  return [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--no-new-privs", "--"];
}

interface NamespaceTools {
  binary: string | undefined;
  shell: string;
  mount: string | undefined;
  perl: string | undefined;
  isRoot: boolean;
}

function probeNamespaces(tools: NamespaceTools, warnings: string[]): SandboxCapabilities["unshare"] {
  const { binary, shell, mount, perl, isRoot } = tools;
  // Without root, an unprivileged user namespace may still grant the other namespaces.
  const userFlags = isRoot ? [] : ["--user", "--map-root-user"];
  const network = binary !== undefined && succeeds(binary, [...userFlags, "--net", "--", "true"]);
  const privateTmp =
    binary !== undefined &&
    mount !== undefined &&
    succeeds(binary, [...userFlags, "--mount", "--", shell, "-c", `"$1" -t tmpfs rgrid-probe /tmp`, "probe", mount]);
  const ipc = binary !== undefined && succeeds(binary, [...userFlags, "--ipc", "--", "true"]);
  // The whole chain a run uses, down to a script that is not PID 1 and whose /proc shows PID 1
  // of its own namespace (a host /proc would show the machine's init there).
  const pid =
    binary !== undefined &&
    mount !== undefined &&
    perl !== undefined &&
    succeeds(binary, [
      ...userFlags,
      "--mount",
      "--pid",
      "--",
      perl,
      "-e",
      PID_NAMESPACE_INIT,
      "--",
      shell,
      "-c",
      `${mountProc('"$1"')} && [ "$$" != 1 ] && [ /proc/1/ns/pid -ef /proc/self/ns/pid ]`,
      "probe",
      mount,
    ]);
  if (!ipc) {
    warnings.push("no IPC namespace (unshare --ipc is not possible here): scripts share System V IPC and POSIX message queues");
  }
  if (!network) {
    warnings.push("no network namespace (unshare --net is not possible here): scripts can reach the network");
  }
  if (!privateTmp) {
    warnings.push("no private mount namespace (unshare --mount is not possible here): scripts share /tmp, /var/tmp and /dev/shm");
  }
  if (!pid) {
    const reason =
      binary !== undefined && mount !== undefined && perl === undefined
        ? "perl, which runs its init, is not installed"
        : "unshare --pid with its own /proc is not possible here";
    warnings.push(`no PID namespace (${reason}): scripts can see every process on this machine with its command line`);
  }
  if (binary === undefined || (!network && !privateTmp && !ipc && !pid)) {
    return undefined;
  }
  return { binary, userNamespace: !isRoot, network, privateTmp, ipc, pid };
}

/** The shell command, run inside a new PID and mount namespace, that gives it its own /proc. */
export function mountProc(mountBinary: string): string {
  return `${mountBinary} -t proc -o nosuid,nodev,noexec proc /proc`;
}

/** The parent for per-execution cgroups when this runner can create and configure them. */
function probeCgroup(controllerDir: string, limitFile: string, limit: string): string | undefined {
  const parent = path.join(controllerDir, "rgrid");
  const probe = path.join(parent, `probe-${process.pid}`);
  try {
    mkdirSync(parent, { recursive: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      return undefined;
    }
  }
  try {
    mkdirSync(probe);
    try {
      // Only the kernel makes this file appear: an ordinary directory is no cgroup.
      if (!existsSync(path.join(probe, "cgroup.procs"))) {
        return undefined;
      }
      writeFileSync(path.join(probe, limitFile), limit);
    } finally {
      rmdirSync(probe);
    }
    return parent;
  } catch {
    return undefined;
  }
}

function succeeds(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: "ignore", timeout: 10_000, cwd: "/" });
  return result.status === 0;
}
