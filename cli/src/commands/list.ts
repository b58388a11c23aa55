import type { Execution, ExecutionStatus } from "@rgrid/proto/execution";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { displayTime, executionView, statusName } from "../present";
import { toJson } from "../json";
import { formatTable } from "../table";

/** The server's largest page. */
const MAX_PAGE_SIZE = 500;

export interface ListOptions {
  /** Only these statuses; all when empty. */
  statuses: ExecutionStatus[];
  /** Only executions of this batch; all when absent. */
  batchId?: string;
  limit: number;
  json: boolean;
}

/** `rgrid list [--status S] [--batch B] [--limit N]`: newest first. */
export async function listCommand(options: ListOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const executions: Execution[] = [];
  let pageToken = "";
  do {
    const pageSize = Math.min(MAX_PAGE_SIZE, options.limit - executions.length);
    const page = await resend(() =>
      client.listExecutions({ statuses: options.statuses, batchId: options.batchId ?? "", pageSize, pageToken }),
    );
    executions.push(...page.executions.slice(0, options.limit - executions.length));
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && executions.length < options.limit);

  if (options.json) {
    output.stdout(toJson(executions.map(executionView)));
  } else if (executions.length === 0) {
    output.stdout("No executions found.");
  } else {
    for (const line of formatTable(["ID", "STATUS", "RUNTIME", "SCRIPT", "ATTEMPT", "CREATED"], executionRows(executions))) {
      output.stdout(line);
    }
  }
  return ExitCode.success;
}

function executionRows(executions: Execution[]): string[][] {
  return executions.map((execution) => [
    execution.id,
    statusName(execution.status),
    execution.runtime,
    execution.script?.name ?? "",
    String(execution.attempt),
    displayTime(execution.createdAt) ?? "",
  ]);
}
