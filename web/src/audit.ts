// What users read of the audit: action names (as `rgrid audit --action` takes them, also the
// `action` URL parameter of /audit) and who acted.
import { AuditAction, type AuditEntry } from "./proto";

const actionNames = {
  [AuditAction.UNSPECIFIED]: "unknown",
  [AuditAction.RETRY]: "retry",
  [AuditAction.FORCED_RETRY]: "forced_retry",
  [AuditAction.AUTOMATIC_RETRY]: "automatic_retry",
  [AuditAction.BATCH_RETRY]: "batch_retry",
  [AuditAction.CANCEL]: "cancel",
  [AuditAction.SIGN_IN]: "sign_in",
} as const satisfies Record<AuditAction, string>;

const actionLabels = {
  [AuditAction.UNSPECIFIED]: "unknown",
  [AuditAction.RETRY]: "retry",
  [AuditAction.FORCED_RETRY]: "forced retry",
  [AuditAction.AUTOMATIC_RETRY]: "automatic retry",
  [AuditAction.BATCH_RETRY]: "batch retry",
  [AuditAction.CANCEL]: "cancel",
  [AuditAction.SIGN_IN]: "sign-in",
} as const satisfies Record<AuditAction, string>;

/** The actions a user can filter by, in the order of the Action select. */
export const filterableActions: readonly AuditAction[] = [
  AuditAction.RETRY,
  AuditAction.FORCED_RETRY,
  AuditAction.AUTOMATIC_RETRY,
  AuditAction.BATCH_RETRY,
  AuditAction.CANCEL,
  AuditAction.SIGN_IN,
];

export function actionName(action: AuditAction): string {
  return actionNames[action] ?? "unknown";
}

/** For reading: "forced retry" rather than "forced_retry". */
export function actionLabel(action: AuditAction): string {
  return actionLabels[action] ?? "unknown";
}

/** The action named by a URL parameter; undefined for an empty or unknown name. */
export function actionFromName(name: string): AuditAction | undefined {
  return filterableActions.find((action) => actionNames[action] === name);
}

/** The key or session that asked, or the service itself for what nobody asked for. */
export function actorName(entry: Pick<AuditEntry, "actor">): string {
  return entry.actor === "" ? "rgrid (automatic)" : entry.actor;
}

/** Ids of the service's records: a prefix, an underscore, 32 hex characters. */
export function isId(text: string): boolean {
  return /^[a-z]+_[0-9a-f]{32}$/.test(text);
}

/** A retry's outcome is the new execution's id: the console links it. */
export function outcomeExecutionId(outcome: string): string | undefined {
  return outcome.startsWith("exec_") && isId(outcome) ? outcome : undefined;
}
