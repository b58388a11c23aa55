import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfo_Reason, ErrorInfoSchema, ExecutionStatus } from "../src/proto";
import { refusalAdvice, refusalOf } from "../src/refusals";

const refused = (info: Parameters<typeof create<typeof ErrorInfoSchema>>[1]) =>
  new ConnectError("refused", Code.FailedPrecondition, undefined, [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, info) }]);

describe("refusals", () => {
  it("reads the ErrorInfo the service attaches, and nothing from other errors", () => {
    const refusal = refusalOf(refused({ reason: ErrorInfo_Reason.ALREADY_TERMINAL, status: ExecutionStatus.FAILED }));
    expect(refusal).toMatchObject({ reason: ErrorInfo_Reason.ALREADY_TERMINAL, status: ExecutionStatus.FAILED });
    expect(refusalOf(new ConnectError("no detail", Code.Internal))).toBeUndefined();
    expect(refusalOf(new Error("not a call"))).toBeUndefined();
  });

  it("advises only where the server's sentence does not already say what to do", () => {
    const advice = (reason: ErrorInfo_Reason, status = ExecutionStatus.UNSPECIFIED) =>
      refusalAdvice(create(ErrorInfoSchema, { reason, status }));
    expect(advice(ErrorInfo_Reason.NOT_TERMINAL, ExecutionStatus.RUNNING)).toBe(
      "It is running now: Force retry runs it again anyway, and the original keeps running.",
    );
    expect(advice(ErrorInfo_Reason.INPUT_MISSING)).toContain("run the script again with its files");
    expect(advice(ErrorInfo_Reason.ALREADY_TERMINAL, ExecutionStatus.COMPLETED)).toBeUndefined();
    expect(advice(ErrorInfo_Reason.STORAGE_UNAVAILABLE)).toBeUndefined();
  });
});
