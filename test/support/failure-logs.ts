/**
 * After each test that failed an assertion, prints the last `count` lines of the services' logs, so
 * the failure can be read against what the grid did.
 */
export function printLogsOnFailure(label: string, logs: () => readonly string[] | undefined, count = 80): void {
  afterEach(() => {
    const state = expect.getState();
    if (state.assertionCalls !== state.numPassingAsserts) {
      process.stderr.write(`${label} logs:\n${(logs() ?? []).slice(-count).join("\n")}\n`);
    }
  });
}
