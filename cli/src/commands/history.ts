import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { AuditEntry, Execution } from "@rgrid/proto/execution";
import { auditActionName, auditEntryView, auditSummary } from "../audit-view";
import { fetchExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { displayTime, executionView, statusName } from "../present";
import { formatTable } from "../table";

/** The server's largest page. */
const MAX_PAGE_SIZE = 500;

export interface HistoryOptions {
  executionId: string;
  json: boolean;
}

/** One line of the history: an attempt of the lineage, or an audit entry about it. */
type HistoryEvent = { kind: "attempt"; at: number; execution: Execution } | { kind: "audit"; at: number; entry: AuditEntry };

/**
 * `rgrid history <id>`: every attempt of the execution's lineage, oldest first, interleaved with
 * what was asked of it (retries, cancels: who, why, and what came of it).
 */
export async function historyCommand(options: HistoryOptions, context: ServerContext): Promise<number> {
  const { output } = context;
  const named = await fetchExecution(context, options.executionId);
  const rootId = named.rootId || named.id;
  const [attempts, entries] = await Promise.all([lineageOf(context, rootId), auditOf(context, options.executionId)]);
  const events = timeline(attempts, entries);

  if (options.json) {
    output.stdout(
      toJson({
        execution_id: named.id,
        root_id: rootId,
        events: events.map((event) =>
          event.kind === "attempt" ? { type: "attempt", ...attemptView(event.execution) } : { type: "audit", ...auditEntryView(event.entry) },
        ),
      }),
    );
    return ExitCode.success;
  }
  output.stdout(`History of ${named.id} (lineage ${rootId}, ${attempts.length} ${attempts.length === 1 ? "attempt" : "attempts"})`);
  output.stdout("");
  for (const line of formatTable(["TIME", "EVENT", "EXECUTION", "DETAILS"], events.map(eventRow))) {
    output.stdout(line);
  }
  return ExitCode.success;
}

/**
 * Oldest first. An entry and the retry it made share their time; the entry comes first, as the
 * request came before its result.
 */
function timeline(attempts: readonly Execution[], entries: readonly AuditEntry[]): HistoryEvent[] {
  const events: HistoryEvent[] = [
    ...attempts.map((execution): HistoryEvent => ({ kind: "attempt", at: millis(execution.createdAt), execution })),
    ...entries.map((entry): HistoryEvent => ({ kind: "audit", at: millis(entry.createdAt), entry })),
  ];
  return events.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === "audit" ? -1 : 1));
}

function eventRow(event: HistoryEvent): string[] {
  if (event.kind === "attempt") {
    const { execution } = event;
    return [
      displayTime(execution.createdAt) ?? "",
      `attempt ${execution.attempt}`,
      execution.id,
      `${executionView(execution).retry_kind ?? "unknown"}, ${statusName(execution.status)}`,
    ];
  }
  const { entry } = event;
  return [displayTime(entry.createdAt) ?? "", auditActionName(entry.action), entry.executionId, auditSummary(entry)];
}

/** An attempt as `--json` shows it: the execution's own JSON view, cut to what a history is about. */
function attemptView(execution: Execution) {
  const { id, attempt, retry_kind, retry_of, status, created_at } = executionView(execution);
  return { id, attempt, retry_kind, retry_of, status, created_at };
}

function lineageOf(context: ServerContext, rootId: string): Promise<Execution[]> {
  const { client, resend } = context;
  return allPages(
    (pageToken) => resend(() => client.listExecutions({ rootId, pageSize: MAX_PAGE_SIZE, pageToken })),
    (page) => page.executions,
  );
}

function auditOf(context: ServerContext, executionId: string): Promise<AuditEntry[]> {
  const { client, resend } = context;
  return allPages(
    (pageToken) => resend(() => client.listAuditEntries({ executionId, pageSize: MAX_PAGE_SIZE, pageToken })),
    (page) => page.entries,
  );
}

/** Every item of a listing, page after page until the server gives no next page. */
async function allPages<Page extends { nextPageToken: string }, T>(
  fetchPage: (pageToken: string) => Promise<Page>,
  itemsOf: (page: Page) => T[],
): Promise<T[]> {
  const items: T[] = [];
  let pageToken = "";
  do {
    const page = await fetchPage(pageToken);
    items.push(...itemsOf(page));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return items;
}

function millis(timestamp: Timestamp | undefined): number {
  return timestamp ? timestampDate(timestamp).getTime() : 0;
}
