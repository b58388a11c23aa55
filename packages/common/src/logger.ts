// The logger every process passes around. This module writes the readable format: one line per
// event on stderr, so that the local stack's interleaved output stays legible. Production picks
// JSON lines instead (RGRID_LOG_FORMAT=json, see log-format.ts and json-logger.ts).

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

type Level = "INFO" | "WARN" | "ERROR";

export function createLogger(
  component: string,
  write: (line: string) => void = (line) => process.stderr.write(line + "\n"),
): Logger {
  const emit = (level: Level, message: string, fields?: LogFields) => {
    const suffix = fields && Object.keys(fields).length > 0 ? " " + formatFields(fields) : "";
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${component}: ${escapeLineBreaks(message)}${suffix}`);
  };
  return {
    info: (message, fields) => emit("INFO", message, fields),
    warn: (message, fields) => emit("WARN", message, fields),
    error: (message, fields) => emit("ERROR", message, fields),
    child: (name) => createLogger(`${component}/${name}`, write),
  };
}

/** A logger that drops everything; for tests that do not inspect logs. */
export const silentLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

function formatFields(fields: LogFields): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${formatValue(value)}`)
    .join(" ");
}

function formatValue(value: unknown): string {
  if (value instanceof Error) {
    return quote(value.stack ?? value.message);
  }
  if (typeof value === "string") {
    return /^[\w.:/@-]*$/.test(value) && value !== "" ? value : quote(value);
  }
  if (typeof value === "bigint") {
    return value.toString();
  }
  return escapeLineBreaks(JSON.stringify(value) ?? String(value));
}

const quote = (text: string) => escapeLineBreaks(JSON.stringify(text));

// Characters that end a line or control a terminal in some reader of the log: C0 and C1 controls
// (NEL is one) and the Unicode line and paragraph separators. JSON.stringify escapes only C0.
const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * One event stays one line whatever a message or value holds: a client's text quoted in an
 * error cannot start a line that looks like another event.
 */
function escapeLineBreaks(text: string): string {
  return text.replace(LINE_BREAKING, (char) => {
    switch (char) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      default:
        return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
    }
  });
}
