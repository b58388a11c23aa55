import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditAction, AuditEntrySchema } from "@rgrid/proto";
import type { AuditEntry as AuditEntryMessage } from "@rgrid/proto";
import type { AuditActionName, AuditEntry } from "../db/entities";

// Both directions from one table, so an action added to one side and not the other fails here.
const WIRE_ACTIONS: Record<AuditActionName, AuditAction> = {
  retry: AuditAction.RETRY,
  forced_retry: AuditAction.FORCED_RETRY,
  automatic_retry: AuditAction.AUTOMATIC_RETRY,
  batch_retry: AuditAction.BATCH_RETRY,
  cancel: AuditAction.CANCEL,
  sign_in: AuditAction.SIGN_IN,
};

const ACTIONS_BY_WIRE = new Map<AuditAction, AuditActionName>(
  Object.entries(WIRE_ACTIONS).map(([name, wire]) => [wire, name as AuditActionName]),
);

/** The stored action for a wire value; undefined for UNSPECIFIED (no filter). */
export function actionFromWire(action: AuditAction): AuditActionName | undefined {
  return ACTIONS_BY_WIRE.get(action);
}

export function auditEntryMessage(entry: AuditEntry): AuditEntryMessage {
  return create(AuditEntrySchema, {
    id: entry.id,
    accountId: entry.accountId,
    actor: entry.actor,
    action: WIRE_ACTIONS[entry.action],
    executionId: entry.executionId ?? "",
    rootId: entry.rootId ?? "",
    batchId: entry.batchId ?? "",
    requestId: entry.requestId,
    reason: entry.reason,
    outcome: entry.outcome,
    createdAt: timestampFromDate(entry.createdAt),
  });
}
