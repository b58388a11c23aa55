import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/knex";
import { DiffChange, DiffExecutionsResponseSchema, DiffSideSchema, EnvDiffSchema, InputDiffSchema } from "@rgrid/proto";
import type { DiffExecutionsResponse, DiffSide, EnvDiff, InputDiff } from "@rgrid/proto";
import type { Execution, StoredFile } from "../db/entities";
import { executionMessage, fileMessage } from "./convert";
import { LOG_PAGE_SIZE, compareLogs } from "./log-divergence";
import type { LogArchive } from "./log-archive";
import { findOwnedExecution } from "./queries";

export interface DiffRequestFields {
  executionA: string;
  executionB: string;
  /** Env values are returned only when asked for: a diff is often pasted into tickets and chats. */
  showValues: boolean;
}

/**
 * DiffExecutions: two executions of the caller's account compared part by part. Either one
 * missing or another account's is the NotFound of findOwnedExecution, so a diff reveals no more
 * about other accounts than GetExecution does.
 */
export async function diffExecutions(
  em: EntityManager,
  logArchive: Pick<LogArchive, "readLines">,
  accountId: string,
  request: DiffRequestFields,
  logPageSize = LOG_PAGE_SIZE,
): Promise<DiffExecutionsResponse> {
  const a = await findOwnedExecution(em, accountId, request.executionA);
  const b = await findOwnedExecution(em, accountId, request.executionB);
  return create(DiffExecutionsResponseSchema, {
    a: diffSide(a),
    b: diffSide(b),
    script: changeOf(a.scriptName === b.scriptName && a.scriptSizeBytes === b.scriptSizeBytes && a.scriptSha256 === b.scriptSha256),
    inputs: inputDiffs(a.inputs, b.inputs),
    args: changeOf(sameList(a.args, b.args)),
    env: envDiffs(a.env, b.env, request.showValues),
    runtime: changeOf(a.runtime === b.runtime),
    timeout: changeOf(a.timeoutSeconds === b.timeoutSeconds),
    network: changeOf(a.network === b.network),
    runner: changeOf(a.runnerId === b.runnerId),
    sandboxWarnings: changeOf(sameList([...a.sandboxWarnings].sort(), [...b.sandboxWarnings].sort())),
    // The duration is left out on purpose: two runs practically never take the same time.
    outcome: changeOf(
      a.status === b.status && a.exitCode === b.exitCode && a.failureKind === b.failureKind && a.errorMessage === b.errorMessage,
    ),
    logs: await compareLogs((execution, after, limit) => logArchive.readLines(em, execution, after, limit), a, b, logPageSize),
  });
}

/** One side as the wire shows it, converted by the same code as GetExecution's answer. */
function diffSide(execution: Execution): DiffSide {
  const message = executionMessage(execution);
  const { startedAt, finishedAt } = execution;
  return create(DiffSideSchema, {
    executionId: message.id,
    rootId: message.rootId,
    attempt: message.attempt,
    script: message.script,
    args: message.args,
    runtime: message.runtime,
    timeoutSeconds: message.timeoutSeconds,
    network: message.network,
    runnerId: message.runnerId,
    sandboxWarnings: message.sandboxWarnings,
    status: message.status,
    exitCode: message.exitCode,
    failureKind: message.failureKind,
    errorMessage: message.errorMessage,
    duration: startedAt && finishedAt ? durationFromMs(finishedAt.getTime() - startedAt.getTime()) : undefined,
  });
}

function inputDiffs(inputsA: readonly StoredFile[], inputsB: readonly StoredFile[]): InputDiff[] {
  const byNameA = new Map(inputsA.map((input) => [input.name, input]));
  const byNameB = new Map(inputsB.map((input) => [input.name, input]));
  return unionSorted(byNameA.keys(), byNameB.keys()).map((name) => {
    const a = byNameA.get(name);
    const b = byNameB.get(name);
    return create(InputDiffSchema, {
      name,
      change: presenceChange(a, b, (x, y) => x.sizeBytes === y.sizeBytes && x.sha256 === y.sha256),
      a: a === undefined ? undefined : fileMessage(a),
      b: b === undefined ? undefined : fileMessage(b),
    });
  });
}

function envDiffs(envA: Record<string, string>, envB: Record<string, string>, showValues: boolean): EnvDiff[] {
  // Env maps come from JSON columns: own keys only, never a prototype's.
  const valueIn = (env: Record<string, string>, key: string) => (Object.hasOwn(env, key) ? env[key] : undefined);
  return unionSorted(Object.keys(envA), Object.keys(envB)).map((key) => {
    const a = valueIn(envA, key);
    const b = valueIn(envB, key);
    return create(EnvDiffSchema, {
      key,
      change: presenceChange(a, b, (x, y) => x === y),
      valueA: showValues ? a : undefined,
      valueB: showValues ? b : undefined,
    });
  });
}

/** ADDED when only b has it, REMOVED when only a has it, else SAME or CHANGED. */
function presenceChange<T>(a: T | undefined, b: T | undefined, same: (a: T, b: T) => boolean): DiffChange {
  if (a === undefined) {
    return DiffChange.ADDED;
  }
  if (b === undefined) {
    return DiffChange.REMOVED;
  }
  return changeOf(same(a, b));
}

function changeOf(same: boolean): DiffChange {
  return same ? DiffChange.SAME : DiffChange.CHANGED;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * Every key of either side, in code-unit order: the same on every server and database, so
 * `--json` output is stable.
 */
function unionSorted(a: Iterable<string>, b: Iterable<string>): string[] {
  return [...new Set([...a, ...b])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}
