// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { randomToken } from "@rgrid/common/ids";
import type { BatchRetryItem } from "@rgrid/proto/execution";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { executionView, statusName } from "../present";
import type { ExecutionView } from "../present";
import { formatTable } from "../table";

export interface RetryBatchOptions {
  batchId: string;
  /** Only failed and timed-out executions; otherwise every finished one. */
  failedOnly: boolean;
  /** Why (`--reason`): recorded in the audit with each retry made. */
  reason?: string;
  json: boolean;
}

export interface BatchRetryItemView {
  original_id: string;
  original_status: string;
  retry: ExecutionView | null;
  skipped: string | null;
}

/** `rgrid retry --batch <id> [--failed-only]`: one call; the server picks and retries, this presents. */
export async function retryBatchCommand(options: RetryBatchOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const { batchId } = options;
  // One id for this invocation: a re-send after a lost connection gets the same retries back.
  const requestId = randomToken(16);
  const response = await resend(() => client.retryBatch({ batchId, failedOnly: options.failedOnly, requestId, reason: options.reason ?? "" }));

  if (response.items.length === 0) {
    // Batch ids are made by clients, so an unknown one is simply an empty batch.
    output.stderr(`Error: batch ${batchId} has no executions. Check the id with 'rgrid list --batch ${batchId}'.`);
    return ExitCode.failed;
  }
  if (options.json) {
    output.stdout(
      toJson({
        batch_id: batchId,
        retried_count: response.retriedCount,
        skipped_count: response.skippedCount,
        items: response.items.map(itemView),
      }),
    );
    return ExitCode.success;
  }
  for (const line of formatTable(["ORIGINAL", "STATUS", "NEW"], itemRows(response.items))) {
    output.stdout(line);
  }
  output.stdout("");
  const total = response.items.length;
  output.stdout(
    `Retried ${response.retriedCount} of ${total} ${total === 1 ? "execution" : "executions"}; ${response.skippedCount} skipped.`,
  );
  if (response.retriedCount > 0) {
    output.stdout(`Check progress: rgrid list --batch ${batchId}`);
  }
  // The call did what was asked; nothing to retry is an answer, not a failure.
  return ExitCode.success;
}

function itemRows(items: readonly BatchRetryItem[]): string[][] {
  return items.map((item) => [
    item.original?.id ?? "",
    item.original ? statusName(item.original.status) : "",
    item.retry ? item.retry.id : `skipped: ${item.skipped}`,
  ]);
}

function itemView(item: BatchRetryItem): BatchRetryItemView {
  return {
    original_id: item.original?.id ?? "",
    original_status: item.original ? statusName(item.original.status) : "",
    retry: item.retry ? executionView(item.retry) : null,
    skipped: item.retry ? null : item.skipped || null,
  };
}
