import { Code } from "@connectrpc/connect";
import { ErrorInfo_Reason, ErrorInfoSchema, ExecutionStatus, ObjectKind, RetryKind } from "@rgrid/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Execution, RetryOverridesSchema } from "@rgrid/proto";
import { describeOnEachDatabase } from "./databases";
import { expectCode } from "./expect-code";
import { countExecutions, finishedExecution } from "./flows";
import { sha256Of, startHarnessOn } from "./harness";
import type { Harness } from "./harness";

// Retries with overrides (RetryExecutionRequest.overrides): the retry asks for what the original
// did except what the overrides change, records exactly those changes, and otherwise follows the
// retry rules. On every database, since the record is a JSON column.

type Overrides = MessageInitShape<typeof RetryOverridesSchema>;

const FIXED_SCRIPT = "print('fixed')\n";

describeOnEachDatabase("retries with overrides", (driver) => {
  let h: Harness;
  let original: Execution;

  beforeEach(async () => {
    h = await startHarnessOn(await driver.scratch());
    original = await finishedExecution(h);
  });
  afterEach(async () => {
    await h.close();
  });

  const retryWith = (overrides: Overrides, requestId = `overrides-${Math.random()}`) =>
    h.alice.retryExecution({ executionId: original.id, requestId, overrides });

  test("env, args, timeout and runtime: the retry runs with them and records each change, before and after", async () => {
    const { execution: retry } = await retryWith({
      setEnv: { MODE: "debug", UPSTREAM_URL: "http://mirror" },
      args: { values: ["input.json", "--strict"] },
      timeoutSeconds: 600,
      runtime: "python:3.12",
    });

    expect(retry).toMatchObject({
      status: ExecutionStatus.QUEUED,
      retryOf: original.id,
      retryKind: RetryKind.MANUAL,
      env: { MODE: "debug", UPSTREAM_URL: "http://mirror" },
      args: ["input.json", "--strict"],
      timeoutSeconds: 600,
      runtime: "python:3.12",
    });
    const { execution: read } = await h.alice.getExecution({ executionId: retry!.id });
    expect(read!.overrides).toMatchObject({
      env: [
        { key: "MODE", before: "test", after: "debug" },
        { key: "UPSTREAM_URL", after: "http://mirror" },
      ],
      args: { before: ["input.json", "--verbose"], after: ["input.json", "--strict"] },
      timeout: { before: 60, after: 600 },
      runtime: { before: original.runtime, after: "python:3.12" },
    });
    expect(read!.overrides!.env[1]!.before).toBeUndefined();
    expect(read!.overrides!.script).toBeUndefined();
    // The inputs and the script are still the original's, copied server-side.
    expect(h.storage.keysUnder(retry!.id).sort()).toEqual([`executions/${retry!.id}/inputs/input.json`, `executions/${retry!.id}/script/process.py`]);
    // The original is untouched.
    const { execution: after } = await h.alice.getExecution({ executionId: original.id });
    expect(after).toMatchObject({ env: original.env, args: original.args, timeoutSeconds: 60, runtime: original.runtime });
    expect(after!.overrides).toBeUndefined();
  });

  test("unset env and empty args: the variable is gone and the script gets no args", async () => {
    const { execution: retry } = await retryWith({ unsetEnv: ["MODE"], args: { values: [] } });

    expect(retry!.env).toEqual({});
    expect(retry!.args).toEqual([]);
    expect(retry!.overrides!.env).toMatchObject([{ key: "MODE", before: "test" }]);
    expect(retry!.overrides!.env[0]!.after).toBeUndefined();
    expect(retry!.overrides!.args).toMatchObject({ before: ["input.json", "--verbose"], after: [] });
  });

  test("overrides that change nothing record nothing, and a retry of a retry carries the changed values without recording them again", async () => {
    const { execution: same } = await retryWith({ setEnv: { MODE: "test" }, timeoutSeconds: 60, args: { values: [...original.args] } });
    expect(same!.overrides).toBeUndefined();

    const { execution: changed } = await retryWith({ setEnv: { MODE: "debug" } });
    await h.db.fork().getConnection().execute(`update executions set status = 'failed' where id = '${changed!.id}'`);
    const { execution: again } = await h.alice.retryExecution({ executionId: changed!.id, requestId: "plain-retry-of-the-retry" });
    expect(again!.env).toEqual({ MODE: "debug" });
    expect(again!.overrides).toBeUndefined();
  });

  test("a new script: the retry waits in UPLOADING with a grant for the script alone, the inputs copied, and is queued once confirmed", async () => {
    const script = { name: "fixed.py", sizeBytes: BigInt(FIXED_SCRIPT.length), sha256: sha256Of(FIXED_SCRIPT) };
    const first = await retryWith({ script }, "new-script");
    const retry = first.execution!;

    expect(retry.status).toBe(ExecutionStatus.UPLOADING);
    expect(retry.script).toMatchObject({ name: "fixed.py", sha256: script.sha256 });
    expect(first.scriptUpload?.name).toBe("fixed.py");
    expect(h.storage.keysUnder(retry.id)).toEqual([`executions/${retry.id}/inputs/input.json`]);
    expect(retry.overrides!.script).toMatchObject({
      before: { name: "process.py", sha256: original.script!.sha256 },
      after: { name: "fixed.py", sha256: script.sha256 },
    });

    // A re-send while it waits: the same retry, and a grant again.
    const resent = await retryWith({ script }, "new-script");
    expect(resent.execution!.id).toBe(retry.id);
    expect(resent.scriptUpload?.name).toBe("fixed.py");

    // Confirming before the upload is refused; after it, the retry is queued.
    await expectCode(h.alice.confirmUploads({ executionId: retry.id }), Code.FailedPrecondition, "fixed.py");
    h.storage.put(retry.id, ObjectKind.SCRIPT, "fixed.py", FIXED_SCRIPT.length);
    const { execution: confirmed } = await h.alice.confirmUploads({ executionId: retry.id });
    expect(confirmed!.status).toBe(ExecutionStatus.QUEUED);
    expect((await retryWith({ script }, "new-script")).scriptUpload).toBeUndefined();
  });

  test("the original's own script as --script is no new version: copied, not uploaded", async () => {
    const { execution: retry, scriptUpload } = await retryWith({ script: original.script });

    expect(retry!.status).toBe(ExecutionStatus.QUEUED);
    expect(scriptUpload).toBeUndefined();
    expect(retry!.overrides).toBeUndefined();
  });

  test.each([
    ["a variable the original does not set", { unsetEnv: ["NOT_SET"] }, "it does not set NOT_SET"],
    [
      "a new script named as an input",
      { script: { name: "input.json", sizeBytes: 3n, sha256: sha256Of("x=1") } },
      'the new script "input.json" would clash with its input "input.json"',
    ],
  ])("%s: refused with OVERRIDE_NOT_APPLICABLE, nothing created or copied", async (_what, overrides, sentence) => {
    const before = await countExecutions(h);
    const keysBefore = h.storage.objects.size;

    const error = await expectCode(retryWith(overrides), Code.FailedPrecondition, sentence);

    expect(error.findDetails(ErrorInfoSchema)[0]).toMatchObject({ reason: ErrorInfo_Reason.OVERRIDE_NOT_APPLICABLE, executionId: original.id });
    expect(error.rawMessage).toContain("nothing was created");
    expect(await countExecutions(h)).toBe(before);
    expect(h.storage.objects.size).toBe(keysBefore);
  });

  test.each([
    ["set and unset at once", { setEnv: { MODE: "x" }, unsetEnv: ["MODE"] }, "overrides.unset_env"],
    ["a timeout over the maximum", { timeoutSeconds: 86401 }, "overrides.timeout_seconds: must be from 0 (the default) to 86400"],
    ["an unsafe script name", { script: { name: "../evil.py", sizeBytes: 1n, sha256: sha256Of("x") } }, "overrides.script.name"],
    ["a malformed env name", { setEnv: { "1BAD": "x" } }, "overrides.set_env"],
    ["an unknown runtime shape", { runtime: "python 3" }, "overrides.runtime"],
  ])("%s: InvalidArgument naming the field, nothing created", async (_what, overrides, fieldPart) => {
    const before = await countExecutions(h);

    await expectCode(retryWith(overrides), Code.InvalidArgument, fieldPart);

    expect(await countExecutions(h)).toBe(before);
  });
});
