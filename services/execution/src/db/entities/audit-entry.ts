import { EntitySchema } from "@mikro-orm/core";

/** What an audit entry records; the names are AuditAction's without its prefix, in lower case. */
export type AuditActionName = "retry" | "forced_retry" | "automatic_retry" | "batch_retry" | "cancel" | "sign_in";

/**
 * One action that changed something: a retry of any kind, a cancel, a console sign-in. Written in
 * the same transaction as the change, so an entry exists exactly when the action happened.
 * Entries are never changed or deleted by the service.
 */
export class AuditEntry {
  /** "audit_" + 32 hex. */
  id!: string;
  accountId!: string;
  /** The API key's or session's id that asked; "" for what the service did on its own. */
  actor!: string;
  action!: AuditActionName;
  /** The execution acted on; null for sign-ins. */
  executionId!: string | null;
  /** That execution's lineage, so a lineage's entries are one indexed lookup; null for sign-ins. */
  rootId!: string | null;
  batchId!: string | null;
  /** The idempotency request_id of a retry, else the RPC's x-request-id. */
  requestId!: string;
  reason!: string;
  /** The new execution's id, "cancelled" / "cancel requested", or the new session's id. */
  outcome!: string;
  createdAt!: Date;
}

export const AuditEntrySchema = new EntitySchema<AuditEntry>({
  class: AuditEntry,
  tableName: "audit_entries",
  properties: {
    id: { type: "string", primary: true },
    accountId: { type: "string" },
    actor: { type: "string" },
    action: { type: "string" },
    executionId: { type: "string", nullable: true },
    rootId: { type: "string", nullable: true },
    batchId: { type: "string", nullable: true },
    requestId: { type: "string" },
    reason: { type: "text" },
    outcome: { type: "string" },
    createdAt: { type: "datetime" },
  },
});
