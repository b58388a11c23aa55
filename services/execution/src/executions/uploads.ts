import { ErrorInfo_Reason } from "@rgrid/proto";
import type { ObjectInfo } from "@rgrid/proto";
import type { Execution } from "../db/entities";
import { PreconditionError } from "../errors";

// Whether an execution's uploads are complete, as ConfirmUploads and BatchConfirmUploads judge
// it from what storage has in place after committing them.

/** A declared file that is not in place as declared. */
export interface UploadProblem {
  file: string;
  problem: string;
}

/**
 * Each declared file (script, then inputs: the order of executionObjects) that is missing or
 * has a size other than the declared one, from `found`, what storage has in place, in that order.
 */
export function uploadProblems(execution: Execution, found: readonly (ObjectInfo | undefined)[]): UploadProblem[] {
  const declared = [
    { name: execution.scriptName, sizeBytes: execution.scriptSizeBytes },
    ...execution.inputs.map((input) => ({ name: input.name, sizeBytes: input.sizeBytes })),
  ];
  return declared.flatMap((file, index) => {
    const info = found[index];
    if (info === undefined || !info.exists) {
      return [{ file: file.name, problem: `${file.name} (missing)` }];
    }
    if (Number(info.sizeBytes) !== file.sizeBytes) {
      return [{ file: file.name, problem: `${file.name} (expected ${file.sizeBytes} bytes, found ${info.sizeBytes})` }];
    }
    return [];
  });
}

/** Why an execution whose uploads have `problems` (at least one) cannot be confirmed, in words. */
export function incompleteUploadsMessage(executionId: string, problems: readonly UploadProblem[]): string {
  const listed = problems.map((entry) => entry.problem).join(", ");
  return `uploads of ${executionId} are incomplete: ${listed}; upload them and confirm again`;
}

/** The refusal of confirming an execution whose uploads have `problems` (at least one). */
export function incompleteUploads(executionId: string, problems: readonly UploadProblem[]): PreconditionError {
  return new PreconditionError(incompleteUploadsMessage(executionId, problems), {
    reason: ErrorInfo_Reason.INPUT_MISSING,
    executionId,
    file: problems[0]?.file,
  });
}
