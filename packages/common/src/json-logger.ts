import pino from "pino";
import type { LogFields, Logger } from "./logger";

// The production log format: one JSON object per line, written by pino, which log collectors
// (Loki, Elasticsearch, CloudWatch, ...) index without parsing rules. Behind the same Logger
// interface as the readable format, so no code that logs knows which one it writes.

/** Keys pino writes on every line; a field with one of these names is renamed, never duplicated. */
const RESERVED_KEYS = new Set(["level", "time", "msg", "component", "pid", "hostname"]);

/** Where the lines go; a test passes its own to read them. */
export type LogDestination = pino.DestinationStream;

/**
 * A logger writing `{"level":"info","time":"<ISO 8601>","pid":…,"hostname":…,"component":…,
 * "msg":…, …fields}` lines to `destination` (stderr, synchronously, unless told otherwise: a
 * process that exits right after logging loses nothing).
 */
export function createJsonLogger(component: string, destination: LogDestination = stderrDestination()): Logger {
  const root = pino(
    {
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not pino's numbers: readable, and what collectors expect.
      formatters: { level: (label) => ({ level: label }) },
      // Errors become {type, message, stack} with their causes, like the readable format's stack.
      serializers: { error: pino.stdSerializers.err },
    },
    destination,
  );
  return componentLogger(root, component);
}

function stderrDestination(): LogDestination {
  return pino.destination({ dest: 2, sync: true });
}

/**
 * Every component's logger is a child of the root, never of another child: pino would write a
 * second "component" key for each level of nesting.
 */
function componentLogger(root: pino.Logger, component: string): Logger {
  const logger = root.child({ component });
  return {
    info: (message, fields) => logger.info(safeFields(fields), message),
    warn: (message, fields) => logger.warn(safeFields(fields), message),
    error: (message, fields) => logger.error(safeFields(fields), message),
    child: (name) => componentLogger(root, `${component}/${name}`),
  };
}

function safeFields(fields: LogFields | undefined): LogFields {
  if (fields === undefined) {
    return {};
  }
  if (!Object.keys(fields).some((key) => RESERVED_KEYS.has(key))) {
    return fields;
  }
  return Object.fromEntries(Object.entries(fields).map(([key, value]) => [RESERVED_KEYS.has(key) ? `field_${key}` : key, value]));
}
