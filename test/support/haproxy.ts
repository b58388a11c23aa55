// Debian's HAProxy with the project's own configuration (deploy/haproxy.cfg), in front of the
// replicas of a test cluster on loopback.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import * as net from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Front } from "./cluster";
import { REPO_ROOT } from "./grid";

export const HAPROXY_CONFIG = join(REPO_ROOT, "deploy", "haproxy.cfg");

/** Whether haproxy is installed (CI installs it from Debian's packages). */
export const haproxyInstalled = spawnSync("haproxy", ["-v"], { stdio: "ignore" }).status === 0;

export async function startHaproxy(replicas: ReadonlyArray<{ url: string }>, logs: string[]): Promise<Front> {
  if (replicas.length !== 2) {
    throw new Error(`deploy/haproxy.cfg names two replicas, not ${replicas.length}`);
  }
  const port = await freePort();
  const child = spawn("haproxy", ["-db", "-f", HAPROXY_CONFIG], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      RGRID_LB_BIND: `127.0.0.1:${port}`,
      RGRID_REPLICA_1: new URL(replicas[0]!.url).host,
      RGRID_REPLICA_2: new URL(replicas[1]!.url).host,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => logs.push(`haproxy: ${line}`));
  }
  const exited = once(child, "exit");
  await Promise.race([
    waitUntilAccepting(port),
    exited.then(() => {
      throw new Error(`haproxy exited before listening:\n${logs.filter((line) => line.startsWith("haproxy")).join("\n")}`);
    }),
  ]);
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitUntilAccepting(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (connected) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`haproxy is not accepting connections on ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
