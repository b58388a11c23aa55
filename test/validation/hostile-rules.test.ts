// The request rules in process: 1,000 malformed requests per RPC of every service, from the same
// seeded generators the over-the-wire suites send a sample of, each put to the services' own
// request check (protovalidate with the protos' rules,
// then the service's code table). A request whose case calls it malformed must be refused with
// InvalidArgument; a well-formed one that only names the wrong thing (another account's
// execution, an unfinished original) must pass, since its refusal is the service's to make.
// Authentication, framing and the size limit are the wire suites' part.
import { create } from "@bufbuild/protobuf";
import type { DescMessage, DescService } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { requestRefusals } from "@rgrid/common";
import { executionCodeRules } from "@rgrid/execution";
import { ExecutionService, RunnerService, StorageService } from "@rgrid/proto";
import { storageCodeRules } from "@rgrid/storage";
import { fuzzReport } from "../support/fuzz-report";
import type { FuzzOutcome } from "../support/fuzz-clients";
import { hostileRequest } from "../support/hostile-requests";
import { TYPED_RPCS } from "../support/hostile-raw";
import { RUNNER_RPCS, hostileRunnerRequest } from "../support/hostile-runner-requests";
import { STORAGE_RPCS, hostileStorageRequest } from "../support/hostile-storage-requests";
import { unknownExecutionId } from "../support/hostile-values";
import { seededRandom } from "../support/seeded-random";
import type { SeededRandom } from "../support/seeded-random";

const SEED = Number(process.env.RGRID_FUZZ_SEED ?? 20_261_130);
const PER_RPC = 1000;
const MAX_TIMEOUT_SECONDS = 86_400;

interface GeneratedCase {
  kind: string;
  expected: readonly Code[];
  /** StorageService cases: the credential they are sent with ("internal" is the right one). */
  token?: string;
  send(client: never, options: object): Promise<unknown>;
}

/**
 * Malformed, but refused by the handler that reads them rather than by the request rules: a page
 * token is only meaningful to the listing that made it.
 */
const DECIDED_BY_HANDLERS = new Set(["page_token"]);

/** The request a case would send: a client that records instead of calling. */
async function requestOf(hostile: GeneratedCase): Promise<{ rpc: string; request: unknown }> {
  let recorded: { rpc: string; request: unknown } | undefined;
  const recorder = new Proxy(
    {},
    {
      get: (_target, rpc: string) => (request: unknown) => {
        recorded = { rpc, request };
        // Awaitable for unary calls and iterable (empty) for streams alike.
        return (async function* () {})();
      },
    },
  );
  await hostile.send(recorder as never, {});
  if (recorded === undefined) throw new Error(`case ${hostile.kind} sent nothing`);
  return recorded;
}

type Verdict = "refused" | "passed";

/** What the request check makes of one case, as the over-the-wire suites record an answer. */
function checkCase(
  service: DescService,
  refusalOf: ReturnType<typeof requestRefusals>,
  rpc: string,
  hostile: GeneratedCase,
  recorded: { rpc: string; request: unknown },
): FuzzOutcome<string> | undefined {
  const malformed = hostile.expected.length === 1 && hostile.expected[0] === Code.InvalidArgument;
  const wellFormed = !hostile.expected.includes(Code.InvalidArgument);
  if (!malformed && !wellFormed) return undefined;
  const method = service.methods.find((candidate) => candidate.localName === recorded.rpc);
  if (method === undefined) throw new Error(`${service.typeName} has no method ${recorded.rpc}`);
  const schema: DescMessage = method.input;
  // The message as the client builds it; how odd values survive the encodings is the wire
  // suites' part (encoding thousands of log entries here would cost more than all the rules).
  const message = create(schema, recorded.request as never);
  const refusal = refusalOf(schema, message);
  const got: Verdict = refusal === undefined ? "passed" : "refused";
  if (refusal !== undefined && refusal.code !== Code.InvalidArgument) throw new Error(`refused with ${Code[refusal.code]}`);
  return {
    rpc,
    protocol: "in process",
    kind: hostile.kind,
    expected: [malformed ? "refused" : "passed"],
    got,
    message: refusal?.rawMessage ?? "passed the request check",
  };
}

async function fuzzService(
  service: DescService,
  refusalOf: ReturnType<typeof requestRefusals>,
  rpcs: readonly string[],
  generate: (rpc: string, index: number, random: SeededRandom) => GeneratedCase,
): Promise<FuzzOutcome<string>[]> {
  const random = seededRandom(SEED);
  const outcomes: FuzzOutcome<string>[] = [];
  for (const rpc of rpcs) {
    for (let index = 0; index < PER_RPC; index++) {
      const hostile = generate(rpc, index, random);
      // The size limit and credentials are checked before the rules; the wire suites cover them.
      if (hostile.kind === "over request limit" || (hostile.token ?? "internal") !== "internal") continue;
      if (DECIDED_BY_HANDLERS.has(hostile.kind)) continue;
      const outcome = checkCase(service, refusalOf, rpc, hostile, await requestOf(hostile));
      if (outcome !== undefined) outcomes.push(outcome);
    }
  }
  return outcomes;
}

function expectEveryVerdictRight(title: string, rpcs: readonly string[], outcomes: FuzzOutcome<string>[]): void {
  const report = fuzzReport(title, SEED, outcomes);
  console.log(report.summary);
  for (const rpc of rpcs) {
    // Most of each RPC's cases reach the check (the rest are over the size limit or ambiguous).
    expect(report.perRpc[rpc]?.["in process"]).toBeGreaterThanOrEqual(PER_RPC / 2);
  }
  expect(report.unexpected).toEqual([]);
}

test("ExecutionService: every malformed request is refused with InvalidArgument and every well-formed one passes", async () => {
  const targets = { ownId: unknownExecutionId(seededRandom(1)), foreignId: unknownExecutionId(seededRandom(2)), maxTimeoutSeconds: MAX_TIMEOUT_SECONDS };
  const refusalOf = requestRefusals(executionCodeRules({ maxTimeoutSeconds: MAX_TIMEOUT_SECONDS }));
  const outcomes = await fuzzService(ExecutionService, refusalOf, TYPED_RPCS, (rpc, index, random) =>
    hostileRequest(rpc as (typeof TYPED_RPCS)[number], index, random, targets),
  );
  expectEveryVerdictRight("ExecutionService request rules", TYPED_RPCS, outcomes);
});

test("RunnerService: every malformed request is refused with InvalidArgument and every well-formed one passes", async () => {
  const targets = { runnerId: `runner_${"0".repeat(32)}`, executionId: unknownExecutionId(seededRandom(3)) };
  const refusalOf = requestRefusals(executionCodeRules({ maxTimeoutSeconds: MAX_TIMEOUT_SECONDS }));
  const outcomes = await fuzzService(RunnerService, refusalOf, RUNNER_RPCS, (rpc, index, random) =>
    hostileRunnerRequest(rpc as (typeof RUNNER_RPCS)[number], index, random, targets),
  );
  expectEveryVerdictRight("RunnerService request rules", RUNNER_RPCS, outcomes);
});

test("StorageService: every malformed request is refused with InvalidArgument and every well-formed one passes", async () => {
  const refusalOf = requestRefusals(storageCodeRules);
  const outcomes = await fuzzService(StorageService, refusalOf, STORAGE_RPCS, (rpc, _index, random) =>
    hostileStorageRequest(rpc as (typeof STORAGE_RPCS)[number], random, false),
  );
  expectEveryVerdictRight("StorageService request rules", STORAGE_RPCS, outcomes);
});
