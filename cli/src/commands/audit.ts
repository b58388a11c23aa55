import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AuditAction, AuditEntry } from "@rgrid/proto/execution";
import { actorName, auditActionName, auditEntryView } from "../audit-view";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { displayTime, shorten } from "../present";
import { formatTable } from "../table";

/** The server's largest page. */
const MAX_PAGE_SIZE = 500;

export interface AuditOptions {
  /** Only entries recorded at or after this time. */
  since?: Date;
  /** Only this action; every action when absent. */
  action?: AuditAction;
  limit: number;
  json: boolean;
}

/** `rgrid audit [--since T] [--action A]`: the account's audit entries, newest first. */
export async function auditCommand(options: AuditOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const entries: AuditEntry[] = [];
  let pageToken = "";
  do {
    const pageSize = Math.min(MAX_PAGE_SIZE, options.limit - entries.length);
    const page = await resend(() =>
      client.listAuditEntries({
        since: options.since && timestampFromDate(options.since),
        action: options.action,
        pageSize,
        pageToken,
      }),
    );
    entries.push(...page.entries.slice(0, options.limit - entries.length));
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && entries.length < options.limit);

  if (options.json) {
    output.stdout(toJson(entries.map(auditEntryView)));
  } else if (entries.length === 0) {
    output.stdout("No audit entries found.");
  } else {
    for (const line of formatTable(["TIME", "ACTION", "BY", "EXECUTION", "REASON", "OUTCOME"], entries.map(entryRow))) {
      output.stdout(line);
    }
  }
  return ExitCode.success;
}

function entryRow(entry: AuditEntry): string[] {
  return [
    displayTime(entry.createdAt) ?? "",
    auditActionName(entry.action),
    actorName(entry),
    entry.executionId,
    shorten(entry.reason, 50),
    entry.outcome,
  ];
}
