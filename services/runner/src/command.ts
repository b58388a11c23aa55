// The one place that decides what a run executes and with which environment. Sandbox wrappers
// (namespaces, resource limits, the PID namespace's init, dropping privileges) are prefixes of
// this command line.

import { PID_NAMESPACE_INIT } from "./pid-init";
import type { ResolvedRuntime } from "./runtimes";
import type { SandboxCapabilities } from "./sandbox";
import { SHARED_WRITABLE_DIRS, mountProc, setprivArgs } from "./sandbox";

/** Everything needed to start one script process. */
export interface CommandSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /**
   * The command writes READY_MARKER to fd 3 (and closes it) just before it execs the script, so
   * that anything ending the run before that is the sandbox's failure, not the script's.
   */
  reportsReadiness?: boolean;
}

/** What the last wrapper writes to fd 3 when everything before the script has worked. */
export const READY_MARKER = "ready";

export interface BuildCommandInput {
  runtime: ResolvedRuntime;
  /** The script's name relative to the working directory. */
  scriptName: string;
  args: readonly string[];
  /** The execution's own variables. */
  env: Readonly<Record<string, string>>;
  workDir: string;
  /** Absent runs the interpreter directly, with no isolation at all. */
  sandbox?: SandboxRun;
}

/** The sandbox as it applies to one run. */
export interface SandboxRun {
  capabilities: SandboxCapabilities;
  /** The execution asked for the network. */
  network: boolean;
  /** The uid (and gid) of the runner slot, used when privileges are dropped. */
  uid: number;
  /** cgroup.procs files of the execution's cgroups. */
  cgroupProcsFiles: readonly string[];
}

/** The only PATH a script sees: system directories, nothing from the runner's environment. */
export const SCRIPT_PATH = "/usr/local/bin:/usr/bin:/bin";

export function buildCommand(input: BuildCommandInput): CommandSpec {
  const script = [input.runtime.interpreter, scriptArgument(input.scriptName), ...input.args];
  const env = scriptEnvironment(input);
  if (input.sandbox === undefined) {
    const [command, ...args] = script;
    return { command, args, env, cwd: input.workDir };
  }
  // The wrappers run as root: the script's environment (LD_PRELOAD, say) must not reach them, so
  // they get PATH alone and the script's variables are set by the very last exec, as argv entries
  // that no shell ever parses.
  const capabilities = input.sandbox.capabilities;
  const [command, ...args] = [
    ...sandboxPrefix(input.sandbox, input.workDir),
    capabilities.shell,
    "-c",
    `echo ${READY_MARKER} >&3; exec 3>&-; exec "$@"`,
    "rgrid-ready",
    capabilities.env,
    "-i",
    "--",
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    ...script,
  ];
  return { command, args, env: { PATH: SCRIPT_PATH }, cwd: input.workDir, reportsReadiness: true };
}

/**
 * The chain of programs that exec each other before the interpreter runs, in the only order that
 * works: namespaces first (unsharing needs root), then the limits (which bind the PID namespace's
 * init too: no core of it lands in the working directory), then that init, which starts the rest
 * inside the PID namespace, then the mounts and cgroups (still root), and only then the switch to
 * the slot's uid.
 */
function sandboxPrefix(run: SandboxRun, workDir: string): string[] {
  const { capabilities } = run;
  const prefix: string[] = [];
  const namespaces = capabilities.unshare;
  const privateTmp = namespaces?.privateTmp === true && capabilities.mount !== undefined;
  const pidInit = namespaces?.pid === true && capabilities.mount !== undefined ? capabilities.perl : undefined;
  const pidNamespace = pidInit !== undefined;
  const unshareFlags = [
    ...(namespaces?.network === true && !run.network ? ["--net"] : []),
    // Its own /proc needs a mount namespace to be mounted in.
    ...(privateTmp || pidNamespace ? ["--mount"] : []),
    ...(namespaces?.ipc === true ? ["--ipc"] : []),
    ...(pidNamespace ? ["--pid"] : []),
  ];
  if (namespaces !== undefined && unshareFlags.length > 0) {
    prefix.push(namespaces.binary, ...(namespaces.userNamespace ? ["--user", "--map-root-user"] : []), ...unshareFlags, "--");
  }
  if (capabilities.prlimit !== undefined) {
    const limits = capabilities.limits;
    prefix.push(
      capabilities.prlimit,
      // The hard limit one second later turns an ignored SIGXCPU into SIGKILL.
      `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 1}`,
      `--fsize=${limits.maxFileBytes}`,
      // RLIMIT_NPROC counts every process of the uid, so it only means something for a slot's
      // own uid. One above the pids cgroup's limit (when there is one), so that the limit which
      // can be told apart afterwards is the one a script runs into.
      ...(capabilities.dropPrivileges === undefined
        ? []
        : [`--nproc=${limits.maxProcesses + (capabilities.cgroups.pids === undefined ? 0 : 1)}`]),
      `--nofile=${limits.maxOpenFiles}`,
      // A dumped core would land in the working directory and be collected as an output.
      "--core=0",
      "--",
    );
  }
  if (pidInit !== undefined) {
    prefix.push(pidInit, "-e", PID_NAMESPACE_INIT, "--");
  }
  if (privateTmp || pidNamespace || run.cgroupProcsFiles.length > 0) {
    prefix.push(
      capabilities.shell,
      "-c",
      setupScript({ privateTmp, pidNamespace }),
      "rgrid-sandbox",
      capabilities.mount ?? "",
      workDir,
      ...run.cgroupProcsFiles,
      "--",
    );
  }
  if (capabilities.dropPrivileges !== undefined) {
    prefix.push(capabilities.dropPrivileges.setpriv, ...setprivArgs(run.uid));
  }
  return prefix;
}

/**
 * Runs as root inside the new namespaces, with $1 = mount binary, $2 = working directory, then
 * cgroup.procs files up to "--". In a PID namespace `$$` is the pid there, which is also how the
 * kernel reads what the shell writes to cgroup.procs; the init outside stays out of the cgroups,
 * so that the limits count the script's processes and memory alone, as without the namespace.
 * The private tmpfs mounts would hide a working directory below /tmp, so the directory (still
 * the shell's cwd, reachable as /proc/self/cwd) is bound back onto its own path inside them,
 * before /proc becomes the PID namespace's own.
 */
function setupScript(mounts: { privateTmp: boolean; pidNamespace: boolean }): string {
  const steps = [`mount_bin=$1; work_dir=$2; shift 2; while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift`];
  if (mounts.privateTmp) {
    steps.push(
      ...SHARED_WRITABLE_DIRS.map(
        (dir) => `if [ -d ${dir} ]; then "$mount_bin" -t tmpfs -o mode=1777,nosuid,nodev rgrid-tmp ${dir} || exit 125; fi`,
      ),
      `mkdir -p "$work_dir" && "$mount_bin" -c --bind /proc/self/cwd "$work_dir" || exit 125`,
    );
  }
  if (mounts.pidNamespace) {
    steps.push(`${mountProc('"$mount_bin"')} || exit 125`);
  }
  steps.push(`exec "$@"`);
  return steps.join("; ");
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
