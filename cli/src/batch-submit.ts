// Submitting many executions of one script (`rgrid run --batch`) a call's worth at a time: one
// BatchCreateExecutions records up to 100 of them, the script is uploaded once (the server
// copies it to the others), each execution's own inputs are uploaded, and one
// BatchConfirmUploads queues them. A server that predates these calls, or refuses a call as a
// whole, is sent that call's executions one at a time, so that each gets its own answer.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { mapWithLimit } from "@rgrid/common/concurrency";
import { CreateExecutionRequestSchema, ExecutionStatus } from "@rgrid/proto/execution";
import type { CreateExecutionRequest, CreateExecutionResponse, Execution, TransferGrant } from "@rgrid/proto/execution";
import type { ServerContext } from "./context";
import { isTransportFailure } from "./resend";
import { TRANSFER_CONCURRENCY, createRequestOf, submitExecution, upload } from "./submit";
import type { LocalFile, Submission } from "./submit";

/** What BatchCreateExecutions takes in one call (execution.proto): executions, and input files in all. */
const MAX_EXECUTIONS_PER_CALL = 100;
const MAX_INPUTS_PER_CALL = 1000;
/**
 * Well under the server's default request limit (RGRID_MAX_REQUEST_BYTES, 4 MiB); a larger
 * execution goes alone. A server configured lower refuses a larger call as a whole, and its
 * executions then go one at a time.
 */
const MAX_REQUEST_BYTES_PER_CALL = 1024 * 1024;
/** Calls in flight at once: one call's uploads overlap the next one's create. */
const CALLS_IN_FLIGHT = 2;
/** Executions submitted at once when they go one at a time: each uploads a few files at a time itself. */
const ONE_AT_A_TIME_CONCURRENCY = 4;

/** A submission with its CreateExecution request, made once to be measured and sent. */
interface Planned {
  submission: Submission;
  request: CreateExecutionRequest;
}

/** Submitted, or why not. */
export type SubmitResult = { execution: Execution } | { error: unknown };

/**
 * Submits every one of `submissions`, calling `onResult` with each one's index as its result is
 * known. A failure of one (a refusal, a lost connection) never hides what happened to the others.
 */
export async function submitAll(
  context: ServerContext,
  submissions: readonly Submission[],
  onResult: (index: number, result: SubmitResult) => void,
): Promise<void> {
  let batchCallsUnsupported = false;
  const oneAtATime = (group: readonly Submission[]): Promise<SubmitResult[]> =>
    mapWithLimit(group, ONE_AT_A_TIME_CONCURRENCY, async (submission): Promise<SubmitResult> => {
      try {
        return { execution: await submitExecution(context, submission) };
      } catch (error) {
        return { error };
      }
    });
  const planned = submissions.map((submission): Planned => ({ submission, request: create(CreateExecutionRequestSchema, createRequestOf(submission)) }));
  await mapWithLimit(callsOf(planned), CALLS_IN_FLIGHT, async (indexes) => {
    const group = indexes.map((index) => planned[index] as Planned);
    let results: SubmitResult[] | undefined;
    if (!batchCallsUnsupported) {
      try {
        results = await submitTogether(context, group);
      } catch (error) {
        if (isTransportFailure(error) || !(error instanceof ConnectError)) {
          // Already re-sent: the server is out of reach, and would be for each one alone.
          results = group.map(() => ({ error }));
        } else if (error.code === Code.Unimplemented) {
          batchCallsUnsupported = true;
        }
        // Otherwise refused as a whole, which records nothing: one at a time, each gets its own answer.
      }
    }
    results ??= await oneAtATime(group.map(({ submission }) => submission));
    indexes.forEach((index, position) => onResult(index, results[position] as SubmitResult));
  });
}

/**
 * The indexes of `planned` in groups that each fit one BatchCreateExecutions, in order. The
 * request ids are each submission's own, so a group sent again one at a time finds what a
 * create whose answer was lost made.
 */
function callsOf(planned: readonly Planned[]): number[][] {
  const calls: number[][] = [];
  let inputs = 0;
  let bytes = 0;
  planned.forEach(({ submission, request }, index) => {
    const size = toBinary(CreateExecutionRequestSchema, request).length;
    const last = calls.at(-1);
    const fits =
      last !== undefined &&
      last.length < MAX_EXECUTIONS_PER_CALL &&
      inputs + submission.inputs.length <= MAX_INPUTS_PER_CALL &&
      bytes + size <= MAX_REQUEST_BYTES_PER_CALL;
    if (fits) {
      last.push(index);
      inputs += submission.inputs.length;
      bytes += size;
    } else {
      calls.push([index]);
      inputs = submission.inputs.length;
      bytes = size;
    }
  });
  return calls;
}

/** One upload of a submission: its script (for every submission that shares it) or one of its inputs. */
interface Upload {
  position: number;
  file: LocalFile;
  grant: TransferGrant | undefined;
  isScript: boolean;
}

/**
 * Creates, uploads and confirms `group` with one call for each step; its results in order.
 * Throws only when the create fails: nothing was recorded then.
 */
async function submitTogether(context: ServerContext, group: readonly Planned[]): Promise<SubmitResult[]> {
  const { client, resend } = context;
  const { responses } = await resend(() => client.batchCreateExecutions({ requests: group.map(({ request }) => request) }));
  if (responses.length !== group.length) {
    throw new Error(`the server answered ${responses.length} executions for ${group.length}`);
  }
  const executions = responses.map((response) => response.execution ?? missingExecution());

  const uploads = responses.flatMap((response, position) => uploadsOf(response, (group[position] as Planned).submission, position));
  const uploadErrors = new Map<number, unknown>();
  let scriptError: unknown;
  await mapWithLimit(uploads, TRANSFER_CONCURRENCY * 2, async ({ position, file, grant, isScript }) => {
    try {
      await upload(file, grant);
    } catch (error) {
      if (isScript) {
        scriptError ??= error;
      }
      if (!uploadErrors.has(position)) {
        uploadErrors.set(position, error);
      }
    }
  });
  // Every execution shares the script upload; its own failure, if any, says more.
  const errorAt = (position: number): unknown => uploadErrors.get(position) ?? scriptError;
  if (scriptError !== undefined) {
    return executions.map((_, position) => ({ error: errorAt(position) }));
  }

  // The script's uploader is confirmed even when one of its inputs failed: its script is what
  // the others' copies are made from, and its own refusal is not reported over its upload's error.
  const scriptUploaders = new Set(uploads.filter((each) => each.isScript).map((each) => each.position));
  const toConfirm = executions
    .map((execution, position) => ({ execution, position }))
    .filter(({ position }) => !uploadErrors.has(position) || scriptUploaders.has(position));
  const confirmed = new Map<number, SubmitResult>();
  if (toConfirm.length > 0) {
    try {
      const { outcomes } = await resend(() => client.batchConfirmUploads({ executionIds: toConfirm.map(({ execution }) => execution.id) }));
      toConfirm.forEach(({ execution, position }, index) => {
        const outcome = outcomes[index];
        confirmed.set(
          position,
          outcome?.refused
            ? { error: new ConnectError(outcome.refused, Code.FailedPrecondition) }
            : { execution: outcome?.execution ?? execution },
        );
      });
    } catch (error) {
      toConfirm.forEach(({ position }) => confirmed.set(position, { error }));
    }
  }
  return executions.map((_, position) => {
    const error = uploadErrors.get(position);
    return error !== undefined ? { error } : (confirmed.get(position) as SubmitResult);
  });
}

/** What an execution the server just answered still needs uploaded. */
function uploadsOf(response: CreateExecutionResponse, submission: Submission, position: number): Upload[] {
  if (response.execution?.status !== ExecutionStatus.UPLOADING) {
    // A re-sent create that found its execution confirmed already.
    return [];
  }
  return [
    ...(response.scriptUpload ? [{ position, file: submission.script.file, grant: response.scriptUpload, isScript: true }] : []),
    ...submission.inputs.map((file) => ({
      position,
      file,
      grant: response.inputUploads.find((grant) => grant.name === file.name),
      isScript: false,
    })),
  ];
}

function missingExecution(): never {
  throw new Error("the server's answer carried no execution");
}
