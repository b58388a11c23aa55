// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { randomToken } from "@rgrid/common/ids";
import { RetryOperation_State } from "@rgrid/proto/execution";
import type { Execution, RetryOperation, RetryOperationItem, RetryWhereResponse } from "@rgrid/proto/execution";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { displayTime, executionView, shorten, statusName } from "../present";
import type { RetryFilterInit } from "../retry-conditions";
import { ASK_ABOVE } from "../retry-where-terms";
import { formatTable } from "../table";

export interface RetryWhereOptions {
  where: RetryFilterInit;
  /** Only say what matches; retry nothing. */
  dryRun: boolean;
  /** Retry more than ASK_ABOVE without asking. */
  yes: boolean;
  /** Why (`--reason`): recorded in the audit with each retry made. */
  reason?: string;
  json: boolean;
  /** Asks the person at the terminal; absent when there is none to ask. */
  confirm?: (question: string) => Promise<boolean>;
  /** Pause between progress reads of the operation. */
  pollIntervalMs: number;
}

const ITEMS_PAGE = 1000;
const BAR_WIDTH = 24;

/**
 * `rgrid retry --where …`: the server picks the latest attempt of each matching lineage and
 * retries them as one operation at its own pace; this asks first when there are many, shows the
 * progress, and lists each original with its retry or why it was skipped.
 */
export async function retryWhereCommand(options: RetryWhereOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const preview = await resend(() => client.retryWhere({ where: options.where, dryRun: true }));
  if (options.dryRun) {
    if (options.json) {
      output.stdout(toJson({ matched: preview.matched, first_matches: preview.firstMatches.map(executionView) }));
    } else {
      printMatches(preview, output.stdout);
    }
    return ExitCode.success;
  }
  if (preview.matched === 0) {
    output.stdout("No finished execution matches; nothing to retry.");
    return ExitCode.success;
  }
  if (preview.matched > ASK_ABOVE && !options.yes) {
    if (options.confirm === undefined) {
      output.stderr(
        `Error: ${preview.matched} lineages match; retrying more than ${ASK_ABOVE} needs --yes ` +
          "(there is no terminal to ask on). See them first with --dry-run.",
      );
      return ExitCode.usage;
    }
    printMatches(preview, output.stdout);
    output.stdout("");
    if (!(await options.confirm(`Retry the latest attempt of these ${preview.matched} lineages? [y/N] `))) {
      output.stdout("Nothing was retried.");
      return ExitCode.failed;
    }
  }

  // One id for this invocation: a re-send after a lost connection gets the same operation back.
  const requestId = randomToken(16);
  const started = await resend(() =>
    client.retryWhere({
      where: options.where,
      requestId,
      reason: options.reason ?? "",
      // What the user saw (or, for a few, was not asked about): more by now is refused whole.
      atMost: options.yes ? 0 : Math.max(preview.matched, ASK_ABOVE),
    }),
  );
  let operation = requireOperation(started.operation);
  if (!options.json) {
    output.stdout(`Operation ${operation.id}: retrying ${operation.total} ${lineages(operation.total)} on the server.`);
  }
  while (operation.state !== RetryOperation_State.DONE) {
    output.status?.show(progressLine(operation));
    await context.clock.sleep(options.pollIntervalMs);
    const id = operation.id;
    operation = requireOperation((await resend(() => client.getRetryOperation({ operationId: id, pageSize: 1 }))).operation);
  }
  output.status?.clear();

  const items = await allItems(context, operation.id);
  if (options.json) {
    output.stdout(
      toJson({
        operation_id: operation.id,
        total: operation.total,
        retried: operation.retried,
        skipped: operation.skipped,
        items: items.map((item) => ({ original_id: item.originalId, retry_id: item.retryId || null, skipped: item.skipped || null })),
      }),
    );
    return ExitCode.success;
  }
  output.stdout("");
  for (const line of formatTable(["ORIGINAL", "NEW"], items.map((item) => [item.originalId, item.retryId || `skipped: ${item.skipped}`]))) {
    output.stdout(line);
  }
  output.stdout("");
  output.stdout(`Retried ${operation.retried} of ${operation.total} ${lineages(operation.total)}; ${operation.skipped} skipped.`);
  return ExitCode.success;
}

function printMatches(preview: RetryWhereResponse, print: (line: string) => void): void {
  if (preview.matched === 0) {
    print("No finished execution matches.");
    return;
  }
  print(`${preview.matched} ${preview.matched === 1 ? "lineage matches" : "lineages match"}; the latest attempt of each would be retried:`);
  print("");
  for (const line of formatTable(["EXECUTION", "STATUS", "EXIT", "FINISHED", "SCRIPT", "ERROR"], preview.firstMatches.map(matchRow))) {
    print(line);
  }
  const more = preview.matched - preview.firstMatches.length;
  if (more > 0) {
    print(`… and ${more} more.`);
  }
}

function matchRow(execution: Execution): string[] {
  return [
    execution.id,
    statusName(execution.status),
    execution.exitCode === undefined ? "" : String(execution.exitCode),
    displayTime(execution.finishedAt) ?? "",
    execution.script?.name ?? "",
    shorten(execution.errorMessage, 60),
  ];
}

/** "Retrying: [##########··········] 12/40, 10 retried, 2 skipped" */
function progressLine(operation: RetryOperation): string {
  const doneCount = operation.retried + operation.skipped;
  const filled = operation.total === 0 ? BAR_WIDTH : Math.round((doneCount / operation.total) * BAR_WIDTH);
  const bar = "#".repeat(filled) + "·".repeat(BAR_WIDTH - filled);
  return `Retrying: [${bar}] ${doneCount}/${operation.total}, ${operation.retried} retried, ${operation.skipped} skipped`;
}

async function allItems(context: ServerContext, operationId: string): Promise<RetryOperationItem[]> {
  const items: RetryOperationItem[] = [];
  let pageToken = "";
  do {
    const token = pageToken;
    const page = await context.resend(() => context.client.getRetryOperation({ operationId, pageToken: token, pageSize: ITEMS_PAGE }));
    items.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return items;
}

function requireOperation(operation: RetryOperation | undefined): RetryOperation {
  if (operation === undefined) {
    throw new Error("the server's answer carried no operation");
  }
  return operation;
}

function lineages(count: number): string {
  return count === 1 ? "lineage" : "lineages";
}
