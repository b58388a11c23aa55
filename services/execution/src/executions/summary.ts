import type { Execution as ExecutionMessage } from "@rgrid/proto";
import { EXECUTION_FIELDS } from "../db/entities";
import type { Execution } from "../db/entities";
import { executionMessage } from "./convert";

// Calls about many executions at once (RetryBatch, RetryWhere) read and answer with each one's
// summary: each may hold up to megabytes of args, env, file lists and metadata, which are left
// out. GetExecution has the rest.

const LEFT_OUT_OF_SUMMARIES = ["args", "env", "inputs", "metadata", "outputs", "sandboxWarnings"] as const;
type LeftOut = (typeof LEFT_OUT_OF_SUMMARIES)[number];

/** The fields a summary is read with. */
export const SUMMARY_FIELDS = EXECUTION_FIELDS.filter(
  (field): field is Exclude<keyof Execution, LeftOut> => !(LEFT_OUT_OF_SUMMARIES as readonly string[]).includes(field),
);

/** An execution without its bulky fields. */
export type ExecutionSummary = Omit<Execution, LeftOut>;

const SUMMARY_ERROR_MESSAGE_CHARS = 300;

/** The wire message of a summary: the left-out fields empty, a long error message cut short. */
export function summaryMessage(execution: ExecutionSummary): ExecutionMessage {
  const leftOut: Pick<Execution, LeftOut> = { args: [], env: {}, inputs: [], metadata: {}, outputs: [], sandboxWarnings: [] };
  const message = executionMessage({ ...execution, ...leftOut });
  if (message.errorMessage.length > SUMMARY_ERROR_MESSAGE_CHARS) {
    message.errorMessage = message.errorMessage.slice(0, SUMMARY_ERROR_MESSAGE_CHARS - 1) + "…";
  }
  return message;
}
