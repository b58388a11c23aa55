import { RuntimeError } from "@bufbuild/protovalidate";
import type { Validator } from "@bufbuild/protovalidate";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  CreateExecutionRequestSchema,
  ExecutionService,
  ExecutionStatus,
  GetExecutionRequestSchema,
  StorageService,
  bufValidate,
} from "@rgrid/proto";
import type { CodeRule } from "../src/validate-interceptor";
import { codeRule, requestValidator, validateRequests } from "../src/validate-interceptor";

// The validation interceptor in memory, on the real protos' rules, in front of handlers that
// only record that they ran.

const EXECUTION_ID = `exec_${"0".repeat(32)}`;
const SHA256 = "0".repeat(64);

function servicesWith(codeRules: readonly CodeRule[], validator?: Validator) {
  const reached: string[] = [];
  const transport = createRouterTransport(
    (router) => {
      router.service(ExecutionService, {
        getExecution: () => {
          reached.push("getExecution");
          return {};
        },
        createExecution: () => {
          reached.push("createExecution");
          return {};
        },
        listExecutions: () => ({}),
        async *followLogs() {
          reached.push("followLogs");
          yield { entries: [] };
        },
      });
      router.service(StorageService, { copyInputs: () => ({}) });
    },
    { router: { interceptors: [validateRequests(codeRules, validator)] } },
  );
  return { reached, execution: createClient(ExecutionService, transport), storage: createClient(StorageService, transport) };
}

async function refusalOf(call: Promise<unknown>): Promise<ConnectError> {
  return call.then(
    () => {
      throw new Error("the call succeeded");
    },
    (error: unknown) => ConnectError.from(error),
  );
}

/** The detail's violations as [rule id, field path elements ("name", "name[index]")]. */
function violationsOf(error: ConnectError): [string, string[]][] {
  return error.findDetails(bufValidate.ViolationsSchema).flatMap((detail) =>
    detail.violations.map((violation): [string, string[]] => [
      violation.ruleId,
      (violation.field?.elements ?? []).map((element) =>
        element.subscript.case === undefined ? element.fieldName : `${element.fieldName}[${String(element.subscript.value)}]`,
      ),
    ]),
  );
}

const file = (name: string, sha256 = SHA256) => ({ name, sizeBytes: 1n, sha256 });
const validCreate = { script: file("main.py"), runtime: "python", inputs: [file("in.json")] };

test("passes a valid request on, and refuses a broken one before its handler, naming field and rule", async () => {
  const { reached, execution } = servicesWith([]);
  await execution.getExecution({ executionId: EXECUTION_ID });
  const refusal = await refusalOf(execution.getExecution({ executionId: "exec_123" }));
  expect(refusal.code).toBe(Code.InvalidArgument);
  expect(refusal.rawMessage).toBe("invalid execution_id: must be exec_ followed by 32 lowercase hex characters");
  expect(violationsOf(refusal)).toEqual([["rgrid.execution_id", ["execution_id"]]]);
  expect(reached).toEqual(["getExecution"]);
});

test("names nested fields, list items and map entries, keys quoted and shortened", async () => {
  const { reached, execution } = servicesWith([]);
  const refuse = async (overrides: object) => refusalOf(execution.createExecution({ ...validCreate, ...overrides }));

  const digest = await refuse({ inputs: [file("a"), file("b", "ABC")] });
  expect(digest.rawMessage).toBe("invalid inputs[1].sha256: does not match regex pattern `^[0-9a-f]{64}$`");
  expect(violationsOf(digest)).toEqual([["string.pattern", ["inputs[1]", "sha256"]]]);

  expect((await refuse({ env: { "A-B": "x" } })).rawMessage).toBe(
    'invalid env["A-B"]: key does not match regex pattern `^[A-Za-z_][A-Za-z0-9_]*$`',
  );
  expect((await refuse({ env: { OK: "a\u0000b" } })).rawMessage).toBe('invalid env["OK"]: does not match regex pattern `^[^\\x00]*$`');
  // A control character cannot break the message's line, and a huge key is cut.
  expect((await refuse({ metadata: { "a\nb": "v" } })).rawMessage).toMatch(/^invalid metadata\["a\\nb"\]: key /);
  expect((await refuse({ env: { ["-".repeat(70_000)]: "x" } })).rawMessage).toBe(
    `invalid env["${"-".repeat(64)}…"]: key must be at most 256 characters`,
  );
  expect(reached).toEqual([]);
});

test("a rule comparing fields names the field its id starts with", async () => {
  const { storage } = servicesWith([]);
  const refusal = await refusalOf(storage.copyInputs({ sourceExecutionId: EXECUTION_ID, targetExecutionId: EXECUTION_ID }));
  expect(refusal.rawMessage).toBe("invalid target_execution_id: must differ from source_execution_id");
  expect(violationsOf(refusal)).toEqual([["target_execution_id.not_the_source", ["target_execution_id"]]]);
});

test("an enum refusal lists the values the field takes by name", async () => {
  const { execution } = servicesWith([]);
  const refusal = await refusalOf(execution.listExecutions({ statuses: [ExecutionStatus.FAILED, ExecutionStatus.UNSPECIFIED] }));
  expect(refusal.rawMessage).toBe(
    "invalid statuses[1]: must not be in list [0]; expected one of EXECUTION_STATUS_UPLOADING, EXECUTION_STATUS_QUEUED, " +
      "EXECUTION_STATUS_RUNNING, EXECUTION_STATUS_COMPLETED, EXECUTION_STATUS_FAILED, EXECUTION_STATUS_TIMED_OUT, EXECUTION_STATUS_CANCELLED",
  );
});

test("code rules run once the proto's rules pass, and name the field they return", async () => {
  const banned = jest.fn((request: { executionId: string }) =>
    request.executionId === EXECUTION_ID ? { field: "execution_id", rule: "test.banned", problem: "is banned" } : undefined,
  );
  const firstInput = codeRule(CreateExecutionRequestSchema, (request) =>
    request.inputs[0]?.name === "in.json" ? { field: "inputs[0].name", rule: "test.first_input", problem: "is taken" } : undefined,
  );
  const { reached, execution } = servicesWith([codeRule(GetExecutionRequestSchema, banned), firstInput]);

  const malformed = await refusalOf(execution.getExecution({ executionId: "exec_123" }));
  expect(violationsOf(malformed)).toEqual([["rgrid.execution_id", ["execution_id"]]]);
  expect(banned).not.toHaveBeenCalled();

  const refusal = await refusalOf(execution.getExecution({ executionId: EXECUTION_ID }));
  expect(refusal.rawMessage).toBe("invalid execution_id: is banned");
  expect(violationsOf(refusal)).toEqual([["test.banned", ["execution_id"]]]);

  const nested = await refusalOf(execution.createExecution(validCreate));
  expect(nested.rawMessage).toBe("invalid inputs[0].name: is taken");
  expect(violationsOf(nested)).toEqual([["test.first_input", ["inputs[0]", "name"]]]);

  await execution.getExecution({ executionId: `exec_${"1".repeat(32)}` });
  expect(reached).toEqual(["getExecution"]);
});

test("checks the request of a server-streaming call before its handler starts", async () => {
  const { reached, execution } = servicesWith([]);
  const read = async (afterSequence: bigint) => {
    for await (const response of execution.followLogs({ executionId: EXECUTION_ID, afterSequence })) void response;
  };
  const refusal = await refusalOf(read(-1n));
  expect(refusal.rawMessage).toBe("invalid after_sequence: must be greater than or equal to 0 and less than or equal to 9007199254740991");
  expect(reached).toEqual([]);
  await read(0n);
  expect(reached).toEqual(["followLogs"]);
});

test("a rule that cannot be evaluated is a server fault (Internal), not the client's", async () => {
  const broken: Validator = {
    validate: (_schema, message) => ({ kind: "error", message, error: new RuntimeError("rule exploded"), violations: undefined }),
  };
  const { reached, execution } = servicesWith([], broken);
  const failure = await refusalOf(execution.getExecution({ executionId: EXECUTION_ID }));
  expect(failure.code).toBe(Code.Internal);
  expect(reached).toEqual([]);
});

test("the process has one validator", () => {
  expect(requestValidator()).toBe(requestValidator());
});
