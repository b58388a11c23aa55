import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { ExecutionStatus, FileInfoSchema, ObjectKind } from "@rgrid/proto";
import type { CreateExecutionRequest, Execution } from "@rgrid/proto";
import { describeOnEachDatabase } from "./databases";
import { expectCode } from "./expect-code";
import { registeredRunner } from "./flows";
import { executionRequest, sha256Of, startHarnessOn } from "./harness";
import type { Harness } from "./harness";

// BatchCreateExecutions and BatchConfirmUploads: many executions recorded, granted, committed and
// queued in one call each, with one upload of a script they share.

const fileInfo = (name: string, sizeBytes: number, content: string) => create(FileInfoSchema, { name, sizeBytes: BigInt(sizeBytes), sha256: sha256Of(content) });

/** Requests as `rgrid run --batch` makes them: one script, one input file each. */
function batchRequests(count: number, script = fileInfo("process.py", 12, "print('hi')\n")): CreateExecutionRequest[] {
  return Array.from({ length: count }, (_, index) =>
    executionRequest({
      script,
      args: [`data/${index}.csv`],
      inputs: [fileInfo(`data/${index}.csv`, index + 1, `file ${index}`)],
    }),
  );
}

/** Plays the client's uploads: the scripts it was granted, and every input. */
function uploadGranted(h: Harness, created: Array<{ execution?: Execution; scriptUpload?: unknown }>, requests: CreateExecutionRequest[]): void {
  created.forEach(({ execution, scriptUpload }, index) => {
    const request = requests[index] as CreateExecutionRequest;
    if (scriptUpload !== undefined) {
      h.storage.put(execution!.id, ObjectKind.SCRIPT, request.script!.name, Number(request.script!.sizeBytes));
    }
    for (const input of request.inputs) {
      h.storage.put(execution!.id, ObjectKind.INPUT, input.name, Number(input.sizeBytes));
    }
  });
}

describe("download grants asked ahead", () => {
  let h: Harness;
  let now = Date.now();
  beforeEach(async () => {
    now = Date.now();
    h = await startHarnessOn({ target: { dialect: "sqlite", file: ":memory:" }, drop: async () => undefined }, { clock: () => new Date(now) });
  });
  afterEach(async () => {
    await h.close();
  });

  test("are handed out while most of their life is ahead, then asked for again", async () => {
    const requests = batchRequests(2);
    const { responses } = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, responses, requests);
    await h.alice.batchConfirmUploads({ executionIds: responses.map((response) => response.execution!.id) });
    const runnerId = await registeredRunner(h);

    await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    expect(h.storage.calls.createDownloadGrants).toBe(0);
    // The fake's grants last an hour: past half of it, the second claim's are asked afresh.
    now += 31 * 60_000;
    const second = await h.runner.claimExecution({ runnerId, waitMillis: 0 });

    expect(second.assignment?.execution?.id).toBeDefined();
    expect(h.storage.calls.createDownloadGrants).toBe(1);
  });
});

describeOnEachDatabase("submitting a batch", (driver) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarnessOn(await driver.scratch());
  });
  afterEach(async () => {
    await h.close();
  });

  test("creates every execution in one call, granting each script once and every input", async () => {
    const other = fileInfo("other.py", 5, "pass\n");
    const requests = [...batchRequests(3), ...batchRequests(1, other)];

    const { responses } = await h.alice.batchCreateExecutions({ requests });

    expect(responses.map((response) => response.execution?.status)).toEqual(Array(4).fill(ExecutionStatus.UPLOADING));
    expect(responses.map((response) => response.scriptUpload?.name)).toEqual(["process.py", undefined, undefined, "other.py"]);
    expect(responses.map((response) => response.inputUploads.map((grant) => grant.name))).toEqual([["data/0.csv"], ["data/1.csv"], ["data/2.csv"], ["data/0.csv"]]);
    expect(responses.map((response) => response.execution?.args)).toEqual(requests.map((request) => request.args));
    expect(h.storage.calls.createUploadGrantsBatch).toBe(1);
    expect(h.storage.calls.createUploadGrants).toBe(0);
    for (const response of responses) {
      expect((await h.alice.getExecution({ executionId: response.execution!.id })).execution?.status).toBe(ExecutionStatus.UPLOADING);
    }
  });

  test("confirms them in one call: the shared script is copied inside storage, and each is queued and runs its own copy", async () => {
    const requests = batchRequests(3);
    const { responses } = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, responses, requests);
    const ids = responses.map((response) => response.execution!.id);

    const { outcomes } = await h.alice.batchConfirmUploads({ executionIds: ids });

    expect(outcomes.map((outcome) => [outcome.execution?.id, outcome.execution?.status, outcome.refused])).toEqual(
      ids.map((id) => [id, ExecutionStatus.QUEUED, ""]),
    );
    expect(h.storage.calls.commitUploadsBatch).toBe(1);
    expect(h.storage.calls.copyInputsBatch).toBe(1);
    expect(h.storage.calls.commitUploads).toBe(0);
    for (const id of ids) {
      expect(h.storage.keysUnder(id).sort()).toEqual([`executions/${id}/inputs/data/${ids.indexOf(id)}.csv`, `executions/${id}/script/process.py`]);
    }
    const runnerId = await registeredRunner(h);
    const claimed = new Set<string>();
    for (let claim = 0; claim < 3; claim++) {
      const { assignment } = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
      claimed.add(assignment!.execution!.id);
      expect(assignment!.scriptDownload?.url).toContain(`executions/${assignment!.execution!.id}/script/process.py`);
    }
    expect(claimed).toEqual(new Set(ids));
    // Their download grants were asked for together, as they were queued.
    expect(h.storage.calls.createDownloadGrantsBatch).toBe(1);
    expect(h.storage.calls.createDownloadGrants).toBe(0);
  });

  test("a claim asks storage for its own grants when none could be had ahead", async () => {
    const requests = batchRequests(2);
    const { responses } = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, responses, requests);
    h.storage.failWith("createDownloadGrantsBatch", new ConnectError("down", Code.Unavailable));
    await h.alice.batchConfirmUploads({ executionIds: responses.map((response) => response.execution!.id) });
    const runnerId = await registeredRunner(h);

    const first = await h.runner.claimExecution({ runnerId, waitMillis: 0 });

    expect(first.assignment?.scriptDownload?.url).toContain(`executions/${first.assignment!.execution!.id}/script/process.py`);
    expect(h.storage.calls.createDownloadGrants).toBe(1);
  });

  test("refuses only the executions whose uploads are incomplete, naming the file, and queues the others", async () => {
    const requests = batchRequests(3);
    const { responses } = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, responses, requests);
    const ids = responses.map((response) => response.execution!.id);
    h.storage.objects.delete(`executions/${ids[1]}/inputs/data/1.csv`);

    const { outcomes } = await h.alice.batchConfirmUploads({ executionIds: ids });

    expect(outcomes.map((outcome) => outcome.execution?.status)).toEqual([ExecutionStatus.QUEUED, ExecutionStatus.UPLOADING, ExecutionStatus.QUEUED]);
    expect(outcomes[1]?.refused).toBe(`uploads of ${ids[1]} are incomplete: data/1.csv (missing); upload them and confirm again`);
    expect((await h.alice.getExecution({ executionId: ids[1]! })).execution?.status).toBe(ExecutionStatus.UPLOADING);

    // Uploaded at last, it is confirmed on its own; its script was copied with the others'.
    h.storage.put(ids[1]!, ObjectKind.INPUT, "data/1.csv", 2);
    expect((await h.alice.confirmUploads({ executionId: ids[1]! })).execution?.status).toBe(ExecutionStatus.QUEUED);
  });

  test("queues none when the shared script never arrived", async () => {
    const requests = batchRequests(2);
    const { responses } = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, responses.map(({ execution }) => ({ execution })), requests);
    const ids = responses.map((response) => response.execution!.id);

    const { outcomes } = await h.alice.batchConfirmUploads({ executionIds: ids });

    expect(outcomes.map((outcome) => outcome.refused)).toEqual(
      ids.map((id) => `uploads of ${id} are incomplete: process.py (missing); upload them and confirm again`),
    );
    expect(outcomes.map((outcome) => outcome.execution?.status)).toEqual([ExecutionStatus.UPLOADING, ExecutionStatus.UPLOADING]);
  });

  test("answers a re-sent create and confirm with the same executions, granting only what still waits", async () => {
    const requests = batchRequests(3);
    const first = await h.alice.batchCreateExecutions({ requests });
    const again = await h.alice.batchCreateExecutions({ requests });
    expect(again.responses.map((response) => response.execution?.id)).toEqual(first.responses.map((response) => response.execution?.id));
    expect(again.responses.map((response) => response.scriptUpload?.name)).toEqual(["process.py", undefined, undefined]);

    uploadGranted(h, first.responses, requests);
    const ids = first.responses.map((response) => response.execution!.id);
    await h.alice.batchConfirmUploads({ executionIds: ids });
    const confirmedAgain = await h.alice.batchConfirmUploads({ executionIds: ids });
    expect(confirmedAgain.outcomes.map((outcome) => [outcome.execution?.status, outcome.refused])).toEqual(Array(3).fill([ExecutionStatus.QUEUED, ""]));

    const afterConfirm = await h.alice.batchCreateExecutions({ requests });
    expect(afterConfirm.responses.map((response) => [response.execution?.status, response.scriptUpload, response.inputUploads])).toEqual(
      Array(3).fill([ExecutionStatus.QUEUED, undefined, []]),
    );
  });

  test("makes each execution once when the same batch is created twice at the same moment", async () => {
    const requests = batchRequests(20);

    const [one, two] = await Promise.all([h.alice.batchCreateExecutions({ requests }), h.alice.batchCreateExecutions({ requests })]);

    const ids = one.responses.map((response) => response.execution!.id);
    expect(two.responses.map((response) => response.execution!.id)).toEqual(ids);
    expect(new Set(ids).size).toBe(20);
    const listed = await h.alice.listExecutions({ pageSize: 100 });
    expect(listed.executions).toHaveLength(20);
  });

  test("another account's execution is not found, and nothing of the call is confirmed", async () => {
    const requests = batchRequests(1);
    const mine = await h.alice.batchCreateExecutions({ requests });
    uploadGranted(h, mine.responses, requests);
    const theirs = await h.bob.batchCreateExecutions({ requests: batchRequests(1) });
    const myId = mine.responses[0]!.execution!.id;
    const theirId = theirs.responses[0]!.execution!.id;

    await expectCode(h.alice.batchConfirmUploads({ executionIds: [myId, theirId] }), Code.NotFound, theirId);

    expect((await h.alice.getExecution({ executionId: myId })).execution?.status).toBe(ExecutionStatus.UPLOADING);
  });

  test("records nothing when storage cannot grant the uploads", async () => {
    h.storage.failWith("createUploadGrantsBatch", new ConnectError("down", Code.Unavailable));

    await expectCode(h.alice.batchCreateExecutions({ requests: batchRequests(3) }), Code.Unavailable);

    expect((await h.alice.listExecutions({ pageSize: 100 })).executions).toEqual([]);
  });
});
