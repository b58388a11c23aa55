// Malformed requests for every RunnerService RPC, drawn from a seeded random source. Each case
// says which Connect codes are correct answers; none may register a runner or change anything.
import { Code } from "@connectrpc/connect";
import type { CallOptions, Client } from "@connectrpc/connect";
import { LogEntry_Stream, Outcome } from "@rgrid/proto";
import type { RunnerService } from "@rgrid/proto";
import { OVER_REQUEST_LIMIT_BYTES, hex, malformedExecutionId, malformedName, malformedRuntime, malformedSha256, malformedSize, unknownExecutionId } from "./hostile-values";
import type { SeededRandom } from "./seeded-random";

export type RunnerClient = Client<typeof RunnerService>;
export type RunnerRpcName = keyof RunnerClient;
type RequestOf<R extends RunnerRpcName> = Parameters<RunnerClient[R]>[0];

export const RUNNER_RPCS: RunnerRpcName[] = [
  "registerRunner",
  "claimExecution",
  "appendLogs",
  "createOutputUploads",
  "completeExecution",
  "heartbeat",
];

export interface RunnerTargets {
  /** A registered runner holding nothing. */
  runnerId: string;
  /** An execution that runner has not claimed. */
  executionId: string;
}

export interface RunnerHostileCase {
  rpc: RunnerRpcName;
  kind: string;
  expected: readonly Code[];
  send(client: RunnerClient, options: CallOptions): Promise<unknown>;
}

const invalid = [Code.InvalidArgument] as const;
/** A well-formed request about a runner or execution that is not this runner's to touch. */
const notYours = [Code.NotFound, Code.FailedPrecondition, Code.PermissionDenied] as const;

function runnerCase<R extends RunnerRpcName>(rpc: R, kind: string, expected: readonly Code[], request: RequestOf<R>): RunnerHostileCase {
  return {
    rpc,
    kind,
    expected,
    send: (client, options) => (client[rpc] as (request: RequestOf<R>, options: CallOptions) => Promise<unknown>)(request, options),
  };
}

const oversize = (random: SeededRandom) => random.string(1, "xyz").repeat(OVER_REQUEST_LIMIT_BYTES);

export function malformedRunnerId(random: SeededRandom): string {
  const body = hex(random, 32);
  return random.pick([
    () => "",
    () => `exec_${body}`,
    () => `RUNNER_${body}`,
    () => `runner_${body.slice(0, random.int(0, 31))}`,
    () => `runner_${body}f`,
    () => `runner_${body.slice(0, 31)}Z`,
    () => `runner_${body.slice(0, 10)}\u0000${body.slice(11)}`,
    () => `../runner_${body}`,
    () => random.string(random.int(1, 300), "runer_/\\\u0000\u00e9"),
  ])();
}

/** Either a malformed runner id (InvalidArgument) or a well-formed one nobody registered. */
function hostileRunnerId(random: SeededRandom): { kind: string; id: string; expected: readonly Code[] } {
  return random.chance(0.7)
    ? { kind: "malformed runner_id", id: malformedRunnerId(random), expected: invalid }
    : { kind: "unknown runner_id", id: `runner_${hex(random, 32)}`, expected: notYours };
}

function registerRunnerCase(random: SeededRandom): RunnerHostileCase {
  const valid = { name: "fuzz", runtimes: ["python"], version: "1", sandboxWarnings: [] as string[] };
  const broken = random.pick<() => [string, typeof valid]>([
    () => ["name empty", { ...valid, name: "" }],
    () => ["name too long", { ...valid, name: "n".repeat(random.int(256, 5000)) }],
    () => ["name control", { ...valid, name: `a${random.pick(["\u0000", "\n", "\u001b", "\u007f"])}b` }],
    () => ["no runtimes", { ...valid, runtimes: [] }],
    () => ["runtime", { ...valid, runtimes: ["python", malformedRuntime(random)] }],
    () => ["too many runtimes", { ...valid, runtimes: Array.from({ length: random.int(51, 500) }, (_, index) => `r${index}`) }],
    () => ["version too long", { ...valid, version: "v".repeat(random.int(129, 2000)) }],
    () => ["empty sandbox warning", { ...valid, sandboxWarnings: [""] }],
    () => ["sandbox warning control", { ...valid, sandboxWarnings: ["no cgroup\u0000"] }],
    () => ["sandbox warning too long", { ...valid, sandboxWarnings: ["w".repeat(random.int(501, 3000))] }],
    () => ["too many sandbox warnings", { ...valid, sandboxWarnings: Array.from({ length: random.int(33, 200) }, () => "w") }],
  ]);
  const [kind, request] = broken();
  return runnerCase("registerRunner", kind, invalid, request);
}

function claimExecutionCase(random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  if (random.chance(0.3)) {
    return runnerCase("claimExecution", "wait_millis", invalid, { runnerId: targets.runnerId, waitMillis: random.pick([-1, -2_147_483_648, -random.int(2, 100_000)]) });
  }
  const { kind, id, expected } = hostileRunnerId(random);
  return runnerCase("claimExecution", kind, expected, { runnerId: id, waitMillis: 0 });
}

const validEntry = (random: SeededRandom, sequence: number) => ({ sequence: BigInt(sequence), stream: LogEntry_Stream.STDOUT, line: `line ${random.int(0, 1000)}` });

function appendLogsCase(random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  const valid = { runnerId: targets.runnerId, executionId: targets.executionId, entries: [validEntry(random, 1)] };
  const broken = random.pick<() => [string, readonly Code[], typeof valid]>([
    () => {
      const { kind, id, expected } = hostileRunnerId(random);
      return [kind, expected, { ...valid, runnerId: id }];
    },
    () => ["malformed execution_id", invalid, { ...valid, executionId: malformedExecutionId(random) }],
    () => ["execution not claimed", notYours, { ...valid, executionId: random.chance(0.5) ? targets.executionId : unknownExecutionId(random) }],
    () => ["sequence", invalid, { ...valid, entries: [{ ...validEntry(random, 1), sequence: random.pick([0n, -1n, 2n ** 53n, 2n ** 63n - 1n]) }] }],
    () => ["stream", invalid, { ...valid, entries: [{ ...validEntry(random, 1), stream: random.pick([LogEntry_Stream.UNSPECIFIED, 9 as LogEntry_Stream, -1 as LogEntry_Stream]) }] }],
    () => ["line too long", invalid, { ...valid, entries: [{ ...validEntry(random, 1), line: "l".repeat(64 * 1024 + random.int(1, 1000)) }] }],
    () => ["too many entries", invalid, { ...valid, entries: Array.from({ length: random.int(10_001, 12_000) }, (_, index) => validEntry(random, index + 1)) }],
  ]);
  const [kind, expected, request] = broken();
  return runnerCase("appendLogs", kind, expected, request);
}

const validOutput = (random: SeededRandom, name: string) => ({ name, sizeBytes: BigInt(random.int(0, 1000)), sha256: hex(random, 64) });

function malformedOutputs(random: SeededRandom): { kind: string; outputs: ReturnType<typeof validOutput>[] } {
  return random.pick<() => { kind: string; outputs: ReturnType<typeof validOutput>[] }>([
    () => ({ kind: "output name", outputs: [{ ...validOutput(random, "x"), name: malformedName(random) }] }),
    () => ({ kind: "output sha256", outputs: [{ ...validOutput(random, "out.txt"), sha256: malformedSha256(random) }] }),
    () => ({ kind: "output size", outputs: [{ ...validOutput(random, "out.txt"), sizeBytes: malformedSize(random) }] }),
    () => ({ kind: "duplicate output", outputs: [validOutput(random, "dup.txt"), validOutput(random, "dup.txt")] }),
    () => ({ kind: "too many outputs", outputs: Array.from({ length: random.int(1001, 2000) }, (_, index) => validOutput(random, `o/${index}`)) }),
  ])();
}

function createOutputUploadsCase(random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  const valid = { runnerId: targets.runnerId, executionId: targets.executionId, outputs: [validOutput(random, "out.txt")] };
  const broken = random.pick<() => [string, readonly Code[], typeof valid]>([
    () => {
      const { kind, id, expected } = hostileRunnerId(random);
      return [kind, expected, { ...valid, runnerId: id }];
    },
    () => ["malformed execution_id", invalid, { ...valid, executionId: malformedExecutionId(random) }],
    () => ["execution not claimed", notYours, valid],
    () => {
      const { kind, outputs } = malformedOutputs(random);
      return [kind, invalid, { ...valid, outputs }];
    },
  ]);
  const [kind, expected, request] = broken();
  return runnerCase("createOutputUploads", kind, expected, request);
}

function completeExecutionCase(random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  const valid = {
    runnerId: targets.runnerId,
    executionId: targets.executionId,
    outcome: Outcome.FAILED,
    exitCode: 1,
    errorMessage: "fuzz",
    outputs: [] as ReturnType<typeof validOutput>[],
  };
  const broken = random.pick<() => [string, readonly Code[], typeof valid]>([
    () => {
      const { kind, id, expected } = hostileRunnerId(random);
      return [kind, expected, { ...valid, runnerId: id }];
    },
    () => ["malformed execution_id", invalid, { ...valid, executionId: malformedExecutionId(random) }],
    () => ["execution not claimed", notYours, { ...valid, outcome: random.pick([Outcome.COMPLETED, Outcome.FAILED, Outcome.CANCELLED, Outcome.TIMED_OUT, Outcome.INFRASTRUCTURE_ERROR]) }],
    () => ["outcome", invalid, { ...valid, outcome: random.pick([Outcome.UNSPECIFIED, 6 as Outcome, 99 as Outcome, -1 as Outcome]) }],
    () => ["error_message too long", invalid, { ...valid, errorMessage: "e".repeat(64 * 1024 + random.int(1, 1000)) }],
    () => {
      const { kind, outputs } = malformedOutputs(random);
      return [kind, invalid, { ...valid, outputs }];
    },
  ]);
  const [kind, expected, request] = broken();
  return runnerCase("completeExecution", kind, expected, request);
}

function heartbeatCase(random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  const broken = random.pick<() => [string, readonly Code[], { runnerId: string; executionIds: string[] }]>([
    () => {
      const { kind, id, expected } = hostileRunnerId(random);
      return [kind, expected, { runnerId: id, executionIds: [] }];
    },
    () => ["malformed execution id", invalid, { runnerId: targets.runnerId, executionIds: [targets.executionId, malformedExecutionId(random)] }],
    () => ["too many execution ids", invalid, { runnerId: targets.runnerId, executionIds: Array.from({ length: random.int(1001, 3000) }, () => unknownExecutionId(random)) }],
  ]);
  const [kind, expected, request] = broken();
  return runnerCase("heartbeat", kind, expected, request);
}

function overLimitCase(rpc: RunnerRpcName, random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  const big = oversize(random);
  const kind = "over request limit";
  const expected = [Code.ResourceExhausted];
  const { runnerId } = targets;
  switch (rpc) {
    case "registerRunner":
      return runnerCase(rpc, kind, expected, { name: "fuzz", runtimes: ["python"], version: big });
    case "claimExecution":
      return runnerCase(rpc, kind, expected, { runnerId: big });
    case "heartbeat":
      return runnerCase(rpc, kind, expected, { runnerId: big });
    case "appendLogs":
      return runnerCase(rpc, kind, expected, { runnerId, executionId: big });
    case "createOutputUploads":
      return runnerCase(rpc, kind, expected, { runnerId, executionId: big });
    case "completeExecution":
      return runnerCase(rpc, kind, expected, { runnerId, executionId: targets.executionId, outcome: Outcome.FAILED, errorMessage: big });
  }
}

/** The `index`th malformed request for `rpc`; indexes below 3 are over the request size limit. */
export function hostileRunnerRequest(rpc: RunnerRpcName, index: number, random: SeededRandom, targets: RunnerTargets): RunnerHostileCase {
  if (index < 3) {
    return overLimitCase(rpc, random, targets);
  }
  switch (rpc) {
    case "registerRunner":
      return registerRunnerCase(random);
    case "claimExecution":
      return claimExecutionCase(random, targets);
    case "appendLogs":
      return appendLogsCase(random, targets);
    case "createOutputUploads":
      return createOutputUploadsCase(random, targets);
    case "completeExecution":
      return completeExecutionCase(random, targets);
    case "heartbeat":
      return heartbeatCase(random, targets);
  }
}
