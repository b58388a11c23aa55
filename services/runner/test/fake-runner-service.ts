// An in-memory RunnerService that hands out queued assignments and records what the runner
// reports. It stands in for execution-service, which the runner only reaches over RPC.

import { create } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { ClaimExecutionResponseSchema, RunnerService } from "@rgrid/proto";

/** Short, so that tests see cancellations promptly. */
export const FAKE_HEARTBEAT_INTERVAL_MILLIS = 50;
import type { Assignment, CompleteExecutionRequest, FileInfo, LogEntry, TransferGrant } from "@rgrid/proto";

export interface FakeRunnerService {
  transport: Transport;
  enqueue(assignment: Assignment): void;
  logs: Map<string, LogEntry[]>;
  completions: CompleteExecutionRequest[];
  registered: { name: string; runtimes: string[]; sandboxWarnings: string[] }[];
  /** Every Heartbeat call, in order. */
  heartbeats: { runnerId: string; executionIds: string[] }[];
  /** The next heartbeat that reports `executionId` running answers it in cancel_execution_ids. */
  cancel(executionId: string): void;
  /** Likewise, answered in lost_execution_ids. */
  loseExecution(executionId: string): void;
  outputUploadRequests: FileInfo[][];
  /** Makes the next `count` AppendLogs calls fail as if the connection had dropped. */
  failNextAppends(count: number): void;
  /** The next Heartbeat call is never answered: it hangs until the caller gives up on it. */
  holdNextHeartbeat(): void;
  /**
   * How often an answered heartbeat came more than the lease after the one before, which would
   * have made execution-service give up the runner's executions.
   */
  leaseExpiries(): number;
  /** Forgets every registered runner, as execution-service does when its database is replaced. */
  forgetRunners(): void;
  /** How many queued assignments were handed out by ClaimExecution, and with a CompleteExecution (claim_next). */
  handedOut: { byClaim: number; withReport: number };
  /** Resolves with the completion of `executionId` once it arrives. */
  completionOf(executionId: string): Promise<CompleteExecutionRequest>;
  /**
   * Answers from now on as a service from before CompleteExecution stored log lines or took
   * claim_next: registration does not offer the first, a completion's final_entries are dropped
   * unread, and claim_next is ignored.
   */
  actAsOlderService(): void;
}

export function createFakeRunnerService(
  uploadGrant: (name: string, executionId: string) => TransferGrant,
  heartbeatIntervalMillis = FAKE_HEARTBEAT_INTERVAL_MILLIS,
): FakeRunnerService {
  const leaseTimeoutMillis = heartbeatIntervalMillis * 5;
  let holdHeartbeat = false;
  let lastAnsweredHeartbeat: number | undefined;
  let leaseExpiries = 0;
  const queue: Assignment[] = [];
  const claimWaiters: (() => void)[] = [];
  const completionWaiters = new Map<string, (request: CompleteExecutionRequest) => void>();
  let appendFailures = 0;
  let completionStoresLogs = true;
  const toCancel = new Set<string>();
  const toLose = new Set<string>();
  const knownRunners = new Set<string>();
  const requireKnown = (runnerId: string) => {
    if (!knownRunners.has(runnerId)) {
      throw new ConnectError(`runner ${runnerId} is not registered; register again`, Code.NotFound);
    }
  };

  const fake: Omit<FakeRunnerService, "transport"> = {
    enqueue(assignment) {
      queue.push(assignment);
      claimWaiters.splice(0).forEach((wake) => wake());
    },
    logs: new Map(),
    completions: [],
    handedOut: { byClaim: 0, withReport: 0 },
    registered: [],
    heartbeats: [],
    cancel(executionId) {
      toCancel.add(executionId);
    },
    loseExecution(executionId) {
      toLose.add(executionId);
    },
    outputUploadRequests: [],
    failNextAppends(count) {
      appendFailures = count;
    },
    holdNextHeartbeat() {
      holdHeartbeat = true;
    },
    leaseExpiries: () => leaseExpiries,
    forgetRunners() {
      knownRunners.clear();
    },
    actAsOlderService() {
      completionStoresLogs = false;
    },
    completionOf(executionId) {
      const done = fake.completions.find((completion) => completion.executionId === executionId);
      if (done !== undefined) {
        return Promise.resolve(done);
      }
      return new Promise((resolve) => completionWaiters.set(executionId, resolve));
    },
  };

  const storeLogs = (executionId: string, entries: LogEntry[]) => {
    fake.logs.set(executionId, [...(fake.logs.get(executionId) ?? []), ...entries]);
  };

  const transport = createRouterTransport(({ service }) => {
    service(RunnerService, {
      registerRunner(request) {
        fake.registered.push({ name: request.name, runtimes: request.runtimes, sandboxWarnings: request.sandboxWarnings });
        const runnerId = `runner_test_${fake.registered.length}`;
        knownRunners.add(runnerId);
        return { runnerId, heartbeatIntervalMillis, leaseTimeoutMillis, completionStoresLogs };
      },
      async heartbeat(request, context) {
        requireKnown(request.runnerId);
        if (holdHeartbeat) {
          holdHeartbeat = false;
          await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
          throw new ConnectError("the caller gave up", Code.Canceled);
        }
        const now = Date.now();
        if (lastAnsweredHeartbeat !== undefined && now - lastAnsweredHeartbeat > leaseTimeoutMillis) {
          leaseExpiries++;
        }
        lastAnsweredHeartbeat = now;
        fake.heartbeats.push({ runnerId: request.runnerId, executionIds: request.executionIds });
        const answer = (wanted: Set<string>) => request.executionIds.filter((id) => wanted.delete(id));
        return { cancelExecutionIds: answer(toCancel), lostExecutionIds: answer(toLose) };
      },
      async claimExecution(request, context) {
        requireKnown(request.runnerId);
        const deadline = Date.now() + request.waitMillis;
        while (queue.length === 0 && Date.now() < deadline && !context.signal.aborted) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, deadline - Date.now());
            claimWaiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
            context.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        requireKnown(request.runnerId);
        const assignment = queue.shift();
        fake.handedOut.byClaim += assignment === undefined ? 0 : 1;
        return create(ClaimExecutionResponseSchema, { assignment });
      },
      appendLogs(request) {
        if (appendFailures > 0) {
          appendFailures--;
          throw new ConnectError("connection reset", Code.Unavailable);
        }
        storeLogs(request.executionId, request.entries);
        return {};
      },
      createOutputUploads(request) {
        fake.outputUploadRequests.push(request.outputs);
        return { uploads: request.outputs.map((output) => uploadGrant(output.name, request.executionId)) };
      },
      completeExecution(request) {
        if (completionStoresLogs) {
          storeLogs(request.executionId, request.finalEntries);
        }
        fake.completions.push(request);
        completionWaiters.get(request.executionId)?.(request);
        const next = request.claimNext && completionStoresLogs ? queue.shift() : undefined;
        fake.handedOut.withReport += next === undefined ? 0 : 1;
        return { next };
      },
    });
  });
  return { ...fake, transport };
}
