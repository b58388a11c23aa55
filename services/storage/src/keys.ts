import { isExecutionId, relativePathProblem } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";

// Every object lives under its execution, so that one prefix holds everything an execution owns:
// executions/<id>/script/<name>, executions/<id>/inputs/<name>, executions/<id>/outputs/<name>,
// executions/<id>/logs/<name>.

const SEGMENT_BY_KIND: ReadonlyMap<ObjectKind, string> = new Map([
  [ObjectKind.SCRIPT, "script"],
  [ObjectKind.INPUT, "inputs"],
  [ObjectKind.OUTPUT, "outputs"],
  [ObjectKind.LOG, "logs"],
]);

const KIND_BY_SEGMENT: ReadonlyMap<string, ObjectKind> = new Map(
  [...SEGMENT_BY_KIND].map(([kind, segment]) => [segment, kind]),
);

/**
 * Suffix of the temporary files that atomic writes rename into place. Object names ending like
 * this are refused, so a half-written upload can never be mistaken for an object.
 */
export const PARTIAL_FILE_PATTERN = /\.rgrid-partial-[0-9a-f]{16}$/;

export interface ParsedKey {
  executionId: string;
  kind: ObjectKind;
  name: string;
}

/** Why `name` cannot name an object, or undefined when it can. */
export function objectNameProblem(name: string): string | undefined {
  return relativePathProblem(name) ?? (PARTIAL_FILE_PATTERN.test(name) ? "uses a reserved suffix" : undefined);
}

/** The prefix under which every execution's objects live, ending in '/'. */
export const EXECUTIONS_PREFIX = "executions/";

/** The prefix that holds every object of an execution, ending in '/'. */
export function executionPrefix(executionId: string): string {
  return `${EXECUTIONS_PREFIX}${executionId}/`;
}

/** The prefix that holds one kind of an execution's objects, ending in '/'. */
export function kindPrefix(executionId: string, kind: ObjectKind): string {
  return `${executionPrefix(executionId)}${kindSegment(kind)}/`;
}

/** The key of an object; requests are validated first (storage.proto's rules and validation.ts). */
export function objectKey(executionId: string, kind: ObjectKind, name: string): string {
  return `${kindPrefix(executionId, kind)}${name}`;
}

/** The parts of a well-formed key, or undefined for anything else (including unsafe names). */
export function parseObjectKey(key: string): ParsedKey | undefined {
  const match = /^executions\/([^/]+)\/([^/]+)\/(.+)$/.exec(key);
  if (!match) {
    return undefined;
  }
  const [, executionId, segment, name] = match as unknown as [string, string, string, string];
  const kind = KIND_BY_SEGMENT.get(segment);
  if (kind === undefined || !isExecutionId(executionId) || objectNameProblem(name) !== undefined) {
    return undefined;
  }
  return { executionId, kind, name };
}

/**
 * The execution a key is stored under, whatever the rest of the key, or undefined when the key
 * is not under a well-formed execution id.
 */
export function executionIdOfKey(key: string): string | undefined {
  const executionId = /^executions\/([^/]+)\//.exec(key)?.[1];
  return executionId !== undefined && isExecutionId(executionId) ? executionId : undefined;
}

/**
 * A key that sorts after every key of the execution and before every key of any later id (for
 * S3's start-after): ids have one length, and '0' is the character after the '/' that ends
 * the execution's prefix.
 */
export function keyAfterExecution(executionId: string): string {
  return `${EXECUTIONS_PREFIX}${executionId}0`;
}

/**
 * Where a script's or an input's upload lands before CommitUploads puts it in place. Upload
 * grants point here, never at the object itself, so a grant cannot change a committed object.
 */
export function stagedKey(executionId: string, kind: ObjectKind, name: string): string {
  return `${executionPrefix(executionId)}${STAGED_SEGMENT}/${kindSegment(kind)}/${name}`;
}

const STAGED_SEGMENT = "staged";

/** The object a staged upload becomes, or undefined when `key` is not a well-formed staged key. */
export function parseStagedKey(key: string): ParsedKey | undefined {
  const executionId = executionIdOfKey(key);
  const staged = executionId === undefined ? "" : `${executionPrefix(executionId)}${STAGED_SEGMENT}/`;
  if (executionId === undefined || !key.startsWith(staged)) {
    return undefined;
  }
  const parsed = parseObjectKey(executionPrefix(executionId) + key.slice(staged.length));
  return parsed !== undefined && isStagedKind(parsed.kind) ? parsed : undefined;
}

/** Scripts and inputs are uploaded through staging and committed; outputs are written in place. */
export function isStagedKind(kind: ObjectKind): boolean {
  return kind === ObjectKind.SCRIPT || kind === ObjectKind.INPUT;
}

/** Human wording of a kind for messages: "script", "input", "output", "log". */
export function kindLabel(kind: ObjectKind): string {
  switch (kind) {
    case ObjectKind.SCRIPT:
      return "script";
    case ObjectKind.INPUT:
      return "input";
    case ObjectKind.OUTPUT:
      return "output";
    case ObjectKind.LOG:
      return "log";
    default:
      return "object";
  }
}

function kindSegment(kind: ObjectKind): string {
  const segment = SEGMENT_BY_KIND.get(kind);
  if (segment === undefined) {
    throw new Error(`no storage location for object kind ${kind}`);
  }
  return segment;
}
