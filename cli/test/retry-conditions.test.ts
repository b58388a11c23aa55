import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureCause } from "@rgrid/proto";
import { ConditionError, parseConditions } from "../src/retry-conditions";

const NOW = new Date("2026-03-01T12:00:00Z");
const BATCH = `batch_${"a".repeat(32)}`;

describe("rgrid retry --where conditions", () => {
  test("each condition fills its part of the filter; several --where and several per value add up", () => {
    const filter = parseConditions(
      [`status=failed,timed_out cause=script,runner-lost exit=3,75`, `error=connection reset by peer script=process.py batch=${BATCH}`, "since=2h until=2026-03-01T11:30:00Z unresolved"],
      NOW,
    );

    expect(filter).toEqual({
      statuses: [ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT],
      causes: [FailureCause.SCRIPT, FailureCause.RUNNER_LOST],
      exitCodes: [3, 75],
      errorContains: "connection reset by peer",
      scriptName: "process.py",
      batchId: BATCH,
      finishedAfter: expect.anything(),
      finishedBefore: expect.anything(),
      unresolved: true,
    });
    expect(timestampDate(filter.finishedAfter as never).toISOString()).toBe("2026-03-01T10:00:00.000Z");
    expect(timestampDate(filter.finishedBefore as never).toISOString()).toBe("2026-03-01T11:30:00.000Z");
  });

  test.each([
    [["cause=flaky"], "cause=flaky is not one of script, timeout, runner_lost, infrastructure"],
    [["status=running"], "status=running is not one of completed, failed, timed_out, cancelled"],
    [["exit=256"], "exit=256 is not an exit code (0 to 255)"],
    [["exit=-1"], "exit=-1 is not an exit code (0 to 255)"],
    [["batch=b1"], "batch=b1 is not a batch id"],
    [["since=yesterday"], "since=yesterday is neither a duration back from now"],
    [["cause=script cause=timeout"], "cause is given twice"],
    [["error="], "error= has no value"],
    [["unresolved=yes"], "unresolved takes no value"],
    [["colour=red"], 'unknown condition "colour=red"'],
    [["  "], "--where needs at least one condition"],
  ])("%j is refused: %s", (values, message) => {
    expect(() => parseConditions(values, NOW)).toThrow(ConditionError);
    expect(() => parseConditions(values, NOW)).toThrow(message);
  });
});
