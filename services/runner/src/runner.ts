// The runner: registers with execution-service, then runs one claim loop per slot. Each loop
// long-polls ClaimExecution and claims again as soon as an execution is done; it only pauses,
// with backoff and jitter, after errors. A heartbeat loop keeps the lease on what is running and
// stops executions the service says were cancelled or are no longer this runner's.

import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@rgrid/common";
import { Outcome, RunnerService } from "@rgrid/proto";
import type { Assignment } from "@rgrid/proto";
import { createBatchFiles } from "./batch-files";
import { executeAssignment } from "./execute";
import type { ExecutionSummary } from "./execute";
import type { BackoffPolicy } from "./retry";
import { DEFAULT_BACKOFF, backoffDelay, retryTransient, sleep } from "./retry";
import type { StopReason } from "./process-runner";
import { identify, openRunnerCgroup } from "./runner-cgroup";
import type { RunnerCgroup } from "./runner-cgroup";
import type { RuntimeCatalog } from "./runtimes";
import type { SandboxCapabilities } from "./sandbox";
import { UID_RANGE_REGISTRY, claimUidRange } from "./uid-range";
import type { UidRange } from "./uid-range";

export interface RunnerDeps {
  client: Client<typeof RunnerService>;
  logger: Logger;
  name: string;
  version: string;
  runtimes: RuntimeCatalog;
  /** Parent of the per-execution working directories. */
  workDir: string;
  concurrency: number;
  killGraceMs: number;
  /** How long stop() lets running executions finish before killing them. */
  shutdownGraceMs: number;
  /** How long one ClaimExecution waits for work (the service caps it at 30 s). */
  claimWaitMillis?: number;
  retryPolicy?: BackoffPolicy;
  maxOutputFiles?: number;
  logFlushIntervalMs?: number;
  /**
   * The isolation measures probed at start; absent runs scripts without any. Its cgroups are the
   * areas shared by the runners of this machine: the runner makes its own cgroup below them.
   */
  sandbox?: SandboxCapabilities;
  /** Where the runners of this host claim their script uids; tests may use their own. */
  uidRangeRegistry?: string;
}

export interface Runner {
  /** Registers and starts claiming; resolves with the id execution-service assigned. */
  start(): Promise<string>;
  /**
   * Stops claiming, lets running executions finish for the shutdown grace, then stops them and
   * reports them as failed; resolves once every slot is idle.
   */
  stop(): Promise<void>;
}

/** Slack on top of the long-poll wait before a silent connection counts as broken. */
const CLAIM_DEADLINE_SLACK_MS = 10_000;

/** Used when execution-service does not say how often it wants heartbeats. */
const DEFAULT_HEARTBEAT_INTERVAL_MS = 2000;

export function createRunner(deps: RunnerDeps): Runner {
  const claimWaitMillis = deps.claimWaitMillis ?? 20_000;
  const retryPolicy = deps.retryPolicy ?? DEFAULT_BACKOFF;
  const stopClaiming = new AbortController();
  const stopHeartbeats = new AbortController();
  let slots: Promise<void>[] = [];
  let heartbeats: Promise<void> | undefined;
  let heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  let heartbeatCallTimeoutMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  let completionStoresLogs = false;
  let ownCgroup: Promise<RunnerCgroup> | undefined;
  let uidRange: UidRange | undefined;
  /** What is running now, each with the controller that stops it (its reason: a StopReason). */
  const running = new Map<string, AbortController>();
  const stopRunning = (reason: StopReason, ids: Iterable<string> = running.keys()) => {
    for (const id of [...ids]) {
      running.get(id)?.abort(reason);
    }
  };

  const executeDeps = {
    client: deps.client,
    logger: deps.logger,
    runtimes: deps.runtimes,
    workRoot: deps.workDir,
    killGraceMs: deps.killGraceMs,
    retryPolicy,
    maxOutputFiles: deps.maxOutputFiles ?? 1000,
    logFlushIntervalMs: deps.logFlushIntervalMs,
    sandbox: deps.sandbox,
    batchFiles: createBatchFiles(),
    // A stopping runner takes no more work, not even with a report.
    claimNext: () => !stopClaiming.signal.aborted,
  };

  const register = async (): Promise<string> => {
    const response = await retryTransient(
      () =>
        deps.client.registerRunner({
          name: deps.name,
          runtimes: [...deps.runtimes.names],
          version: deps.version,
          sandboxWarnings: deps.sandbox?.warnings ?? [],
        }),
      {
        // Registration waits for execution-service to come up for as long as it takes.
        policy: { ...retryPolicy, maxAttempts: Number.POSITIVE_INFINITY },
        signal: stopClaiming.signal,
        onRetry: (error, attempt) => deps.logger.warn("cannot register yet; retrying", { attempt, error: String(error) }),
      },
    );
    heartbeatIntervalMs = response.heartbeatIntervalMillis > 0 ? response.heartbeatIntervalMillis : DEFAULT_HEARTBEAT_INTERVAL_MS;
    // A call that hangs must be given up, and another sent, well before the lease runs out.
    const leaseMs = response.leaseTimeoutMillis;
    heartbeatCallTimeoutMs = leaseMs > 0 ? Math.min(heartbeatIntervalMs, leaseMs / 3) : heartbeatIntervalMs;
    completionStoresLogs = response.completionStoresLogs;
    return response.runnerId;
  };

  /** Runs `assignment` to its report; the slot's next execution if the service handed one over with it. */
  const runAssignment = async (runnerId: string, assignment: Assignment, slot: number): Promise<Assignment | undefined> => {
    const execution = assignment.execution;
    const id = execution?.id ?? "";
    const startedAt = Date.now();
    deps.logger.info(
      `execution started id=${id} runtime=${execution?.runtime} script=${execution?.script?.name} timeout=${assignment.timeoutSeconds}s`,
    );
    const control = new AbortController();
    running.set(id, control);
    try {
      const summary = await executeAssignment({ ...executeDeps, completionStoresLogs }, runnerId, assignment, control.signal, slot);
      deps.logger.info(describeEnd(summary, Date.now() - startedAt));
      return summary.next;
    } catch (error) {
      // Only reporting itself can fail here (every retry exhausted); the service will see the
      // execution as abandoned by this runner.
      deps.logger.error("could not report execution", { id, error });
      return undefined;
    } finally {
      running.delete(id);
    }
  };

  // The id execution-service knows this runner by. A service whose database was replaced has
  // forgotten it and answers claims with NotFound; the runner then registers again, once for
  // all of its slots.
  let registration: Promise<string> | undefined;
  const runnerIdentity = (): Promise<string> => (registration ??= register());

  /** Claims the slot's next execution, waiting for one; undefined when none came (or the claim failed and was waited out). */
  const claimFor = async (slot: number, failures: { inARow: number }): Promise<{ runnerId: string; assignment: Assignment } | undefined> => {
    const identity = runnerIdentity();
    try {
      const runnerId = await identity;
      const response = await deps.client.claimExecution(
        { runnerId, waitMillis: claimWaitMillis },
        { signal: stopClaiming.signal, timeoutMs: claimWaitMillis + CLAIM_DEADLINE_SLACK_MS },
      );
      failures.inARow = 0;
      return response.assignment === undefined ? undefined : { runnerId, assignment: response.assignment };
    } catch (error) {
      if (stopClaiming.signal.aborted) {
        return undefined;
      }
      if (ConnectError.from(error).code === Code.NotFound && registration === identity) {
        deps.logger.warn("execution-service no longer knows this runner; registering again", { slot });
        registration = undefined;
        return undefined;
      }
      failures.inARow++;
      const delayMs = backoffDelay(failures.inARow, retryPolicy);
      deps.logger.warn("claim failed; backing off", { slot, delay_ms: Math.round(delayMs), error: describeError(error) });
      await sleep(delayMs, stopClaiming.signal);
      return undefined;
    }
  };

  const claimLoop = async (slot: number): Promise<void> => {
    const failures = { inARow: 0 };
    // An execution handed over with the slot's last report is this runner's already: it runs
    // next, even when the runner is stopping.
    let handedOver: { runnerId: string; assignment: Assignment } | undefined;
    while (handedOver !== undefined || !stopClaiming.signal.aborted) {
      const work = handedOver ?? (await claimFor(slot, failures));
      handedOver = undefined;
      if (work !== undefined) {
        const next = await runAssignment(work.runnerId, work.assignment, slot);
        handedOver = next === undefined ? undefined : { runnerId: work.runnerId, assignment: next };
      }
    }
  };

  // Runs while idle too: the service counts a runner that stopped calling as gone.
  const heartbeatLoop = async (): Promise<void> => {
    let resendAtOnce = false;
    while (!stopHeartbeats.signal.aborted) {
      if (!resendAtOnce) {
        await sleep(heartbeatIntervalMs, stopHeartbeats.signal);
      }
      resendAtOnce = false;
      if (stopHeartbeats.signal.aborted) {
        break;
      }
      const identity = runnerIdentity();
      try {
        const runnerId = await identity;
        const response = await deps.client.heartbeat(
          { runnerId, executionIds: [...running.keys()] },
          { signal: stopHeartbeats.signal, timeoutMs: heartbeatCallTimeoutMs },
        );
        stopRunning("cancelled", response.cancelExecutionIds);
        stopRunning("lost", response.lostExecutionIds);
        if (response.lostExecutionIds.length > 0) {
          deps.logger.warn("execution-service gave up executions of this runner; stopping them", { ids: response.lostExecutionIds });
        }
      } catch (error) {
        if (stopHeartbeats.signal.aborted) {
          break;
        }
        if (ConnectError.from(error).code === Code.NotFound && registration === identity) {
          // Whatever it ran under the old id is no longer this runner's to finish.
          deps.logger.warn("execution-service no longer knows this runner; stopping its executions and registering again");
          stopRunning("lost");
          registration = undefined;
          continue;
        }
        // The interval is already spent waiting on the call that timed out.
        resendAtOnce = ConnectError.from(error).code === Code.DeadlineExceeded;
        deps.logger.warn("heartbeat failed", { error: describeError(error) });
      }
    }
  };

  return {
    async start() {
      if (deps.sandbox !== undefined) {
        const drop = deps.sandbox.dropPrivileges;
        const range = drop === undefined ? undefined : await claimOwnUidRange(drop, deps.uidRangeRegistry ?? UID_RANGE_REGISTRY, deps.logger);
        uidRange = range;
        ownCgroup = openRunnerCgroup(deps.sandbox.cgroups, deps.logger);
        executeDeps.sandbox = {
          ...deps.sandbox,
          cgroups: (await ownCgroup).parents,
          dropPrivileges: drop === undefined || range === undefined ? undefined : { ...drop, uidBase: range.base },
        };
      }
      const runnerId = await runnerIdentity();
      slots = Array.from({ length: deps.concurrency }, (_, slot) => claimLoop(slot));
      heartbeats = heartbeatLoop();
      return runnerId;
    },
    async stop() {
      stopClaiming.abort();
      const idle = Promise.all(slots).then(() => true);
      const graceOver = new AbortController();
      const finishedInTime = await Promise.race([idle, sleep(deps.shutdownGraceMs, graceOver.signal).then(() => false)]);
      // The grace timer must not keep the process alive once everything is idle.
      graceOver.abort();
      if (!finishedInTime) {
        deps.logger.warn("executions still running after the shutdown grace; stopping them");
        stopRunning("shutdown");
        await idle;
      }
      stopHeartbeats.abort();
      await heartbeats;
      // A runner that failed to make its cgroup has none to remove.
      const cgroup = await ownCgroup?.catch(() => undefined);
      await cgroup?.remove();
      await uidRange?.release();
    },
  };
}

async function claimOwnUidRange(
  drop: NonNullable<SandboxCapabilities["dropPrivileges"]>,
  registry: string,
  logger: Logger,
): Promise<UidRange> {
  const owner = identify(process.pid);
  if (owner === undefined) {
    throw new Error("cannot read /proc/self: the runner cannot claim its script uids");
  }
  const range = await claimUidRange({ registry, preferredBase: drop.uidBase, explicit: drop.uidBaseExplicit, owner });
  if (range.base !== drop.uidBase) {
    logger.warn(`uids from ${drop.uidBase} are another runner's on this host; scripts run as uids from ${range.base}`);
  }
  return range;
}

function describeEnd(summary: ExecutionSummary, durationMs: number): string {
  const outcome = Outcome[summary.outcome].toLowerCase();
  const parts = [`execution finished id=${summary.executionId} outcome=${outcome}`];
  if (summary.exitCode !== undefined) {
    parts.push(`exit_code=${summary.exitCode}`);
  }
  parts.push(`outputs=${summary.outputs.length}`, `duration_ms=${durationMs}`);
  if (summary.errorMessage !== "") {
    parts.push(`error=${JSON.stringify(summary.errorMessage)}`);
  }
  return parts.join(" ");
}

function describeError(error: unknown): string {
  const connectError = ConnectError.from(error);
  return connectError.code === Code.Unknown ? connectError.message : `${Code[connectError.code]}: ${connectError.rawMessage}`;
}
