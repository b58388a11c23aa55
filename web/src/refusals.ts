import { ConnectError } from "@connectrpc/connect";
import { statusName } from "./format";
import { type ErrorInfo, ErrorInfo_Reason, ErrorInfoSchema } from "./proto";

/**
 * Why the service refused a call, from the ErrorInfo detail it attaches: the console acts on the
 * reason and the status it carries instead of asking the server again.
 */
export function refusalOf(error: unknown): ErrorInfo | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return error.findDetails(ErrorInfoSchema)[0];
}

/**
 * What the user can do about a refusal, where the server's sentence does not already say it (it
 * names the status of a finished execution and asks for a second try when storage was away).
 */
export function refusalAdvice(refusal: ErrorInfo): string | undefined {
  switch (refusal.reason) {
    case ErrorInfo_Reason.NOT_TERMINAL:
      return `It is ${statusName(refusal.status)} now: Force retry runs it again anyway, and the original keeps running.`;
    case ErrorInfo_Reason.INPUT_MISSING:
      return "A retry runs with the original's files as they were: run the script again with its files instead.";
    case ErrorInfo_Reason.NOT_FOUND:
      return "It may have been deleted, or it belongs to another account.";
    default:
      return undefined;
  }
}
