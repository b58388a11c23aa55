// Names of files that travel with an execution become object keys and paths inside a runner's
// working directory, so they are held to rules that keep both safe on every platform.

export const MAX_PATH_BYTES = 1024;

/**
 * The name of an execution's archived log among its objects of kind OBJECT_KIND_LOG: storage's
 * StoreLogs writes it there, and execution-service reads it back (and uploads large ones) by it.
 */
export const ARCHIVED_LOG_NAME = "log.jsonl";
export const MAX_SEGMENT_BYTES = 255;

/** Why `name` is not a safe relative path, or undefined when it is. */
export function relativePathProblem(name: string): string | undefined {
  if (name === "") {
    return "must not be empty";
  }
  if (Buffer.byteLength(name, "utf8") > MAX_PATH_BYTES) {
    return `must be at most ${MAX_PATH_BYTES} bytes`;
  }
  if (name.includes("\u0000")) {
    return "must not contain NUL";
  }
  if (/[\u0001-\u001f\u007f]/.test(name)) {
    return "must not contain control characters";
  }
  if (name.includes("\\")) {
    return "must use '/' as separator";
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    return "must be a relative path";
  }
  if (name.includes("\uFFFD") || hasLoneSurrogate(name)) {
    return "must be valid UTF-8";
  }
  for (const segment of name.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      return "must not contain empty, '.' or '..' segments";
    }
    if (Buffer.byteLength(segment, "utf8") > MAX_SEGMENT_BYTES) {
      return `must have segments of at most ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  return undefined;
}

function hasLoneSurrogate(value: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value);
}
