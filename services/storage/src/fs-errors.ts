// What a failed file-system call says, for the local-file store.

/** The error's code (ENOENT, ...), if it has one. */
export function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/** Nothing at the path, or a file where a directory of the path should be. */
export function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** A path component that should be a directory is a file, or the target is a directory. */
export function isPathConflict(error: unknown): boolean {
  const code = errorCode(error);
  return code === "EEXIST" || code === "EISDIR" || code === "ENOTDIR" || code === "ENOTEMPTY";
}

/** Why a file system cannot hard-link (another file system, a link limit, no support): copy the bytes instead. */
export const LINK_FALLBACK_CODES: ReadonlySet<string> = new Set(["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP"]);
