// What users read of the audit: action names, who acted, and the JSON form of an entry. Kept
// beside present.ts, which does the same for executions.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditAction } from "@rgrid/proto/execution";
import type { AuditEntry } from "@rgrid/proto/execution";
import { AUDIT_ACTION_CHOICES } from "./audit-action-names";
import type { AuditActionChoice } from "./audit-action-names";
import { shorten } from "./present";


export function parseAuditAction(name: string): AuditAction | undefined {
  return (AUDIT_ACTION_CHOICES as readonly string[]).includes(name)
    ? AuditAction[name.toUpperCase() as Uppercase<AuditActionChoice>]
    : undefined;
}

export function auditActionName(action: AuditAction): string {
  // An action added to the proto after this CLI was built still prints as something readable.
  return AUDIT_ACTION_CHOICES.find((name) => AuditAction[name.toUpperCase() as Uppercase<AuditActionChoice>] === action) ?? `action_${action}`;
}

/** Who acted: the key or session id, or the service itself for what nobody asked for. */
export function actorName(entry: AuditEntry): string {
  return entry.actor === "" ? "rgrid (automatic)" : entry.actor;
}

/** `by key_…: "reason" -> exec_…`: one entry in a line, for tables. */
export function auditSummary(entry: AuditEntry): string {
  const reason = entry.reason === "" ? "" : ` "${shorten(entry.reason, 60)}"`;
  return `by ${actorName(entry)}${reason} -> ${entry.outcome}`;
}

/** The plain JSON form of an entry, a key per field of the message as the proto names it. */
export function auditEntryView(entry: AuditEntry) {
  return {
    id: entry.id,
    account_id: entry.accountId,
    actor: entry.actor || null,
    action: auditActionName(entry.action),
    execution_id: entry.executionId || null,
    root_id: entry.rootId || null,
    batch_id: entry.batchId || null,
    request_id: entry.requestId,
    reason: entry.reason || null,
    outcome: entry.outcome,
    created_at: entry.createdAt ? timestampDate(entry.createdAt).toISOString() : null,
  };
}

export type AuditEntryView = ReturnType<typeof auditEntryView>;
