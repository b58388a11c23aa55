// Why a CopyInputs call failed, in words the caller can show to the person who asked for a retry.

/** An object the copy needs is not in storage under the source execution. */
export class MissingSourceObjectError extends Error {
  constructor(label: string, name: string, sourceExecutionId: string) {
    super(`${label} '${name}' of ${sourceExecutionId} is missing from storage`);
    this.name = "MissingSourceObjectError";
  }
}

/** The copy completed but the target does not match the source. */
export class CopyMismatchError extends Error {
  constructor(label: string, name: string, targetExecutionId: string, expectedBytes: number, actualBytes: number | undefined) {
    super(
      `copy of ${label} '${name}' to ${targetExecutionId} ` +
        (actualBytes === undefined ? "is missing after copying" : `has ${actualBytes} bytes, expected ${expectedBytes}`),
    );
    this.name = "CopyMismatchError";
  }
}
