import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { create } from "@bufbuild/protobuf";
import { transformErrors } from "@rgrid/common";
import { ErrorInfo_Reason, ErrorInfoSchema } from "@rgrid/proto";
import type { ExecutionStatus } from "@rgrid/proto";

// The errors this service raises on purpose. Handlers throw these; `mapKnownErrors` turns them
// into Connect codes in one place, and anything else is left to `hideUnknownErrors`.

/** What a refusal tells clients besides its sentence (ErrorInfo in the protos). */
export interface Refusal {
  reason: ErrorInfo_Reason;
  executionId?: string;
  status?: ExecutionStatus;
  file?: string;
  batchId?: string;
}

/** An error this service raises on purpose, with the detail clients read instead of the text. */
abstract class RefusalError extends Error {
  constructor(
    message: string,
    readonly refusal?: Refusal,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The thing asked for does not exist for this caller (another account's is missing too). */
export class NotFoundError extends RefusalError {
  override name = "NotFoundError";
}

/** The request is valid but the record's current state does not allow it. */
export class PreconditionError extends RefusalError {
  override name = "PreconditionError";
}

/** StorageService could not be reached or timed out; the same request may succeed later. */
export class StorageUnavailableError extends RefusalError {
  override name = "StorageUnavailableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { reason: ErrorInfo_Reason.STORAGE_UNAVAILABLE }, options);
  }
}

/** StorageService refused the request because of the objects' state (e.g. an input is missing). */
export class StorageRejectedError extends Error {
  override name = "StorageRejectedError";
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof UniqueConstraintViolationException;
}

/** The Connect error for a known error, or undefined for anything unexpected. */
export function toConnectError(error: unknown): ConnectError | undefined {
  if (error instanceof ConnectError) {
    // Already decided by a handler or an interceptor (validation: InvalidArgument; Unauthenticated).
    return error;
  }
  if (error instanceof NotFoundError) {
    // Same code and wording whether the record is missing or belongs to someone else.
    return withDetail(error, Code.NotFound);
  }
  if (error instanceof PreconditionError) {
    // The caller can fix this by waiting or changing state, not by changing the request shape.
    return withDetail(error, Code.FailedPrecondition);
  }
  if (error instanceof StorageRejectedError) {
    // Objects are not as the request needs them (missing or wrong size): a state problem.
    return new ConnectError(error.message, Code.FailedPrecondition);
  }
  if (error instanceof StorageUnavailableError) {
    // Transient: clients may re-send, which is safe because every mutation is idempotent.
    return withDetail(error, Code.Unavailable);
  }
  return undefined;
}

/** The refusal as a Connect error carrying an ErrorInfo detail, when it has one. */
function withDetail(error: RefusalError, code: Code): ConnectError {
  const refusal = error.refusal;
  const details = refusal === undefined ? [] : [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, refusal) }];
  return new ConnectError(error.message, code, undefined, details);
}

/** Maps known errors to Connect codes; unknown ones pass through to `hideUnknownErrors`. */
export function mapKnownErrors(): Interceptor {
  return transformErrors((error) => toConnectError(error) ?? error);
}
