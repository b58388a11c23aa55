// Readable one-line logs on stderr, so that the local stack's interleaved output stays legible
// and production log collectors get one event per line.

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
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${component}: ${message}${suffix}`);
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
    return JSON.stringify(value.stack ?? value.message);
  }
  if (typeof value === "string") {
    return /^[\w.:/@-]*$/.test(value) && value !== "" ? value : JSON.stringify(value);
  }
  return JSON.stringify(value) ?? String(value);
}
