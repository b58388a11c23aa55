import type { ServiceImpl } from "@connectrpc/connect";
import type { ExecutionService } from "@rgrid/proto";
import { callerOf } from "../auth";
import type { Database } from "../db/orm";
import { auditEntryMessage } from "./convert";
import { listAuditPage } from "./list";

export interface AuditHandlerDeps {
  db: Database;
}

type AuditHandlers = Pick<ServiceImpl<typeof ExecutionService>, "listAuditEntries">;

/** Reading the audit; entries are written by the actions themselves (record.ts). */
export function createAuditHandlers(deps: AuditHandlerDeps): AuditHandlers {
  return {
    async listAuditEntries(request, ctx) {
      const page = await listAuditPage(deps.db.fork(), deps.db.dialect, callerOf(ctx).accountId, request);
      return { entries: page.entries.map(auditEntryMessage), nextPageToken: page.nextPageToken };
    },
  };
}
