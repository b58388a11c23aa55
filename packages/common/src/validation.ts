import { Code, ConnectError } from "@connectrpc/connect";

/** One row of a service's validation table: a field and the check that guards it. */
export interface FieldRule<T> {
  field: string;
  /** Why the field is invalid, or undefined when it is fine. */
  check: (message: T) => string | undefined;
}

/**
 * Applies a request's rule table and fails with InvalidArgument naming the first bad field, so
 * every service validates the same way from one declared table per request message.
 */
export function validateRequest<T>(message: T, rules: readonly FieldRule<T>[]): void {
  for (const rule of rules) {
    const problem = rule.check(message);
    if (problem !== undefined) {
      throw new ConnectError(`invalid ${rule.field}: ${problem}`, Code.InvalidArgument);
    }
  }
}
