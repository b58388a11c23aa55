import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** A service of the grid running as its own process. */
export interface ServiceProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Resolves with the URL the service logged as `listening url=…`. */
  readonly listening: Promise<string>;
  /** Resolves when the process has exited, with its exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMillis`. */
  stop(graceMillis?: number): Promise<void>;
}

export interface SpawnServiceOptions {
  name: string;
  entry: string;
  args?: string[];
  env: Record<string, string>;
  cwd: string;
  /** Receives every line the process prints, stdout and stderr alike. */
  onLine: (name: string, line: string) => void;
}

const LISTENING_LINE = /listening url=(\S+)/;

export function spawnService(options: SpawnServiceOptions): ServiceProcess {
  const child = spawn(process.execPath, [options.entry, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    // A process group of its own: Ctrl-C in a terminal signals the launcher's group only, and
    // the launcher stops the services in order (runners first) instead of all at once.
    detached: true,
  });
  killedWithLauncher(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const recentLines: string[] = [];
  const listening = new Promise<string>((resolve, reject) => {
    forwardLines(child, (line) => {
      options.onLine(options.name, line);
      recentLines.push(line);
      recentLines.splice(0, recentLines.length - 10);
      const match = LISTENING_LINE.exec(line);
      if (match) {
        resolve(match[1]);
      }
    });
    void exited.then((code) =>
      reject(
        new Error(`${options.name} exited with code ${code} before it was ready:\n${recentLines.join("\n")}`),
      ),
    );
  });
  // Failing to start is reported through `listening`; keep it from counting as unhandled here.
  listening.catch(() => undefined);

  return {
    name: options.name,
    pid: child.pid,
    listening,
    exited,
    async stop(graceMillis = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMillis);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Services still running; should the launcher end without stopping them, they go with it. */
const runningServices = new Set<ChildProcess>();
process.on("exit", () => runningServices.forEach((service) => service.kill("SIGKILL")));

function killedWithLauncher(child: ChildProcess): void {
  runningServices.add(child);
  child.once("exit", () => runningServices.delete(child));
}

function forwardLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", onLine);
    }
  }
}

/** Runs a one-shot command of a service (e.g. creating an API key) and returns its stdout. */
export function runServiceCommand(entry: string, args: string[], env: Record<string, string>, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) {
        resolve(stdout.trim());
      } else {
        reject(new Error(`${args[0]} failed with code ${code}: ${stderr.trim()}`));
      }
    });
  });
}
