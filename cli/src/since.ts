// `--since` of `rgrid audit`: a duration back from now (30m, 2h, 7d, 1h30m) or a point in time
// (ISO 8601: 2025-03-01, 2025-03-01T14:30 in local time, 2025-03-01T14:30:00Z).
import { durationMillis } from "./start-times";

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** The time `value` names, relative to `now`; undefined when it is neither form. */
export function parseSince(value: string, now: Date): Date | undefined {
  const ms = durationMillis(value, "smhdw");
  if (ms !== undefined) {
    return Number.isSafeInteger(ms) ? new Date(now.getTime() - ms) : undefined;
  }
  if (ISO_TIME.test(value)) {
    // A date alone is midnight local time, as a person means it, not UTC as Date.parse has it.
    const time = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00` : value);
    return Number.isNaN(time.getTime()) ? undefined : time;
  }
  return undefined;
}
