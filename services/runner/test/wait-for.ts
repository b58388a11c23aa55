/** Polls until `condition` holds; generous, as the machine may be busy. */
export async function waitFor(condition: () => boolean, what: string, millis = 20_000): Promise<void> {
  const deadline = Date.now() + millis;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
