// What the compare page says of a DiffExecutionsResponse, in the words of `rgrid diff`: change
// names, files as size and short digest, args as typed, outcomes in one line. Env values are
// never asked for (show_values stays unset), so nothing here shows one.
import { durationMs } from "@bufbuild/protobuf/wkt";
import { failureKindLabel, formatBytes, formatDuration, statusName } from "./format";
import { DiffChange, type DiffSide, type FileInfo } from "./proto";

export type ChangeName = "same" | "changed" | "added" | "removed" | "unknown";

export function changeName(change: DiffChange): ChangeName {
  switch (change) {
    case DiffChange.SAME:
      return "same";
    case DiffChange.CHANGED:
      return "changed";
    case DiffChange.ADDED:
      return "added";
    case DiffChange.REMOVED:
      return "removed";
    default:
      return "unknown";
  }
}

/** The differences first, in the order a reader looks for them; "same" last. */
const SUMMARY_ORDER: readonly ChangeName[] = ["changed", "added", "removed", "unknown", "same"];

/** "1 changed, 1 added, 3 same": how the items of a collection (inputs, env keys) compare. */
export function collectionSummary(items: readonly { change: DiffChange }[]): string {
  const counts = new Map<ChangeName, number>();
  for (const item of items) counts.set(changeName(item.change), (counts.get(changeName(item.change)) ?? 0) + 1);
  return SUMMARY_ORDER.filter((name) => counts.has(name))
    .map((name) => `${counts.get(name)} ${name}`)
    .join(", ");
}

/** Digests are told apart by their first characters; titles carry them whole. */
const SHORT_SHA256 = 12;

/** "2.0 KiB, sha256 1f2e3d4c5b6a", or "(none)". */
export function fileFacts(file: FileInfo | undefined): string {
  return file ? `${formatBytes(file.sizeBytes)}, sha256 ${file.sha256.slice(0, SHORT_SHA256)}` : "(none)";
}

export function fileText(file: FileInfo | undefined): string {
  return file ? `${file.name} (${fileFacts(file)})` : "(none)";
}

/** Arguments as a shell would need them typed, so spaces and empty ones stay visible. */
export function argsText(args: readonly string[]): string {
  if (args.length === 0) return "(none)";
  return args.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(" ");
}

export function onOff(enabled: boolean): string {
  return enabled ? "on" : "off";
}

export function listText(items: readonly string[]): string {
  return items.length === 0 ? "(none)" : items.join("; ");
}

/** "failed, exit code 1, script failure, 2.3 s" (the error message is shown apart, whole). */
export function outcomeText(side: DiffSide): string {
  const parts = [statusName(side.status)];
  if (side.exitCode !== undefined) parts.push(`exit code ${side.exitCode}`);
  const failure = failureKindLabel(side.failureKind);
  if (failure) parts.push(`${failure} failure`);
  if (side.duration) parts.push(formatDuration(durationMs(side.duration)));
  return parts.join(", ");
}
