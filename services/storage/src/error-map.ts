import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { CopyMismatchError, MissingSourceObjectError } from "./copy-errors";
import { ObjectConflictError, ObjectNotFoundError, StorageUnavailableError } from "./object-store";

/**
 * The storage service's known errors as Connect errors, or undefined for anything unknown, which
 * `hideUnknownErrors` then reports as Internal and logs.
 */
export function toConnectError(error: unknown): ConnectError | undefined {
  // Already decided by the code that threw it (validation, authentication).
  if (error instanceof ConnectError) {
    return error;
  }
  // The caller asked to copy something that was never stored (or has been deleted): the
  // request is well-formed but the system is not in the state it needs.
  if (error instanceof MissingSourceObjectError) {
    return new ConnectError(error.message, Code.FailedPrecondition);
  }
  // A store operation found no object where one was required.
  if (error instanceof ObjectNotFoundError) {
    return new ConnectError(error.message, Code.NotFound);
  }
  // The name clashes with an existing object's path; the same request will keep failing.
  if (error instanceof ObjectConflictError) {
    return new ConnectError(error.message, Code.FailedPrecondition);
  }
  // The backend is down or overloaded; the caller may try again later.
  if (error instanceof StorageUnavailableError) {
    return new ConnectError(error.message, Code.Unavailable);
  }
  // The copy was rolled back because its result did not match the source: the objects are not
  // as the request needs them. (Never Aborted: callers read that as a connection reset.)
  if (error instanceof CopyMismatchError) {
    return new ConnectError(error.message, Code.FailedPrecondition);
  }
  return undefined;
}

/** Applies `toConnectError` to whatever a handler throws. */
export function mapStorageErrors(): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error) ?? error;
    }
  };
}
