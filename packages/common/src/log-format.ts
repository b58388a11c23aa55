import type { EnvReader } from "./config";
import { createJsonLogger } from "./json-logger";
import { createLogger } from "./logger";
import type { Logger } from "./logger";

/** "text": readable lines, the default (npm start, a terminal); "json": one JSON object per line. */
export type LogFormat = "text" | "json";

const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** RGRID_LOG_FORMAT, read by every process's configuration; a bad value is a configuration problem. */
export function readLogFormat(reader: EnvReader): LogFormat {
  return reader.oneOf("RGRID_LOG_FORMAT", LOG_FORMATS, "text");
}

/** The logger a process writes its stderr with, in the configured format. */
export function createProcessLogger(component: string, format: LogFormat): Logger {
  return format === "json" ? createJsonLogger(component) : createLogger(component);
}
