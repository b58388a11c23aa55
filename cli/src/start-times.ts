// When a delayed retry may start, as users write it: `--in 10m` and `--at 14:30`. Free of imports,
// like program.ts, so `--help` loads nothing more for it.

/** The longest a retry may wait: the service refuses more (RetryExecutionRequest.queued_until). */
export const MAX_DELAY_MS = 7 * 24 * 60 * 60 * 1000;

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * "30s", "10m", "1h30m": amounts each followed by one of `units` (of s, m, h, d, w), summed in
 * milliseconds; undefined when `text` is not of that form.
 */
export function durationMillis(text: string, units: string): number | undefined {
  if (!new RegExp(`^(?:\\d+[${units}])+$`).test(text)) {
    return undefined;
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)([smhdw])/g)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number);
  }
  return total;
}

/** Thrown with a sentence saying what was expected; program.ts turns it into a usage error. */
export class StartTimeError extends Error {
  override readonly name = "StartTimeError";
}

/**
 * `--in`: "30s", "10m", "2h", "1d", or parts together ("1h30m"), in milliseconds; more than zero
 * and at most 7 days.
 */
export function parseDelay(text: string): number {
  const wanted = "a delay such as 30s, 10m, 2h, 1d or 1h30m (s, m, h, d; at most 7d)";
  const total = durationMillis(text, "smhd");
  if (total === undefined) {
    throw new StartTimeError(`expected ${wanted}.`);
  }
  if (total <= 0) {
    throw new StartTimeError(`the delay must be more than zero: expected ${wanted}.`);
  }
  if (total > MAX_DELAY_MS) {
    throw new StartTimeError(`a retry can wait at most 7 days (7d); expected ${wanted}.`);
  }
  return total;
}

const CLOCK_TIME = /^(\d{1,2}):(\d{2})$/;
// Date and time, seconds and a fraction optional, then an offset or Z; without one, local time.
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * `--at`: "HH:MM" (local time; today, or tomorrow once that time has passed today) or an ISO 8601
 * date and time ("2025-03-01T14:30", local; "2025-03-01T14:30:00Z" or "…+01:00" as given).
 * A time already past, or more than 7 days after `now`, is refused: it is a mistake, not a plan.
 */
export function parseStartTime(text: string, now: Date): Date {
  const at = clockTimeAfter(text, now) ?? isoTime(text);
  if (at === undefined) {
    throw new StartTimeError(
      "expected a time as HH:MM (local time, today or tomorrow) or an ISO 8601 date and time such as " +
        "2025-03-01T14:30 (local time) or 2025-03-01T14:30:00Z.",
    );
  }
  if (at.getTime() <= now.getTime()) {
    throw new StartTimeError(`${text} is in the past; give a later time, or a delay with --in.`);
  }
  if (at.getTime() - now.getTime() > MAX_DELAY_MS) {
    throw new StartTimeError(`${text} is more than 7 days from now; a retry can wait at most 7 days.`);
  }
  return at;
}

/** The next local HH:MM after `now`, or undefined when `text` is not an HH:MM time. */
function clockTimeAfter(text: string, now: Date): Date | undefined {
  const match = CLOCK_TIME.exec(text);
  if (!match) {
    return undefined;
  }
  const [hours, minutes] = [Number(match[1]), Number(match[2])];
  if (hours > 23 || minutes > 59) {
    return undefined;
  }
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate(), hours, minutes);
  return today.getTime() > now.getTime()
    ? today
    : new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, hours, minutes);
}

function isoTime(text: string): Date | undefined {
  const match = ISO_TIME.exec(text);
  if (!match) {
    return undefined;
  }
  const [year, month, day, hours, minutes, seconds] = match.slice(1, 7).map((part) => Number(part ?? 0)) as [
    number, number, number, number, number, number,
  ];
  // Date would roll 31 February over into March: a date that does not exist is a typo.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hours > 23 || minutes > 59 || seconds > 59) {
    return undefined;
  }
  const milliseconds = Number(`${match[7] ?? ""}000`.slice(0, 3));
  const zone = match[8];
  return zone === undefined
    ? new Date(year, month - 1, day, hours, minutes, seconds, milliseconds)
    : new Date(Date.UTC(year, month - 1, day, hours, minutes, seconds, milliseconds) - offsetMillis(zone));
}

/** "+01:00", "-0530" or "Z" as milliseconds east of UTC. */
function offsetMillis(zone: string): number {
  if (zone.toUpperCase() === "Z") {
    return 0;
  }
  const sign = zone.startsWith("-") ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
}
