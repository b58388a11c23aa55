/** The one JSON layout of every `--json` output: indented, so it reads well and parses the same. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
