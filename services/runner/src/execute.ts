// One claimed execution from start to report: working directory, script and inputs, the run
// itself with its logs, the output files, and the CompleteExecution call.

import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { Logger } from "@rgrid/common";
import { downloadFile, uploadFile } from "@rgrid/common";
import { FileInfoSchema, Outcome, RunnerService } from "@rgrid/proto";
import type { Assignment, Execution, FileInfo, TransferGrant } from "@rgrid/proto";
import type { BatchFiles } from "./batch-files";
import type { ExecutionCgroup } from "./cgroup";
import { createExecutionCgroup } from "./cgroup";
import { buildCommand } from "./command";
import { createLogShipper } from "./log-shipper";
import type { LogShipper } from "./log-shipper";
import type { ExecutionReport } from "./outcome";
import { STOPPED, infrastructureFailure, reportFromProcess } from "./outcome";
import { runProcess, stopReasonOf } from "./process-runner";
import type { BackoffPolicy } from "./retry";
import { retryTransient } from "./retry";
import type { RuntimeCatalog } from "./runtimes";
import type { SandboxCapabilities } from "./sandbox";
import type { OutputFile, Workspace } from "./workspace";
import { createWorkspace } from "./workspace";

/**
 * How long a run's last lines wait, once its output has ended, for the report to carry them: a
 * short run's exit and report follow within milliseconds, which saves it an AppendLogs call; a
 * script that closes its output and runs on shows its last lines this much later.
 */
const OUTPUT_END_HOLD_MS = 500;

export interface ExecuteDeps {
  client: Client<typeof RunnerService>;
  logger: Logger;
  runtimes: RuntimeCatalog;
  workRoot: string;
  killGraceMs: number;
  retryPolicy: BackoffPolicy;
  maxOutputFiles: number;
  logFlushIntervalMs?: number;
  /** The service said at registration that CompleteExecution stores final_entries. */
  completionStoresLogs?: boolean;
  /** Absent runs scripts without any isolation (tests of the bare process handling). */
  sandbox?: SandboxCapabilities;
  /** Small files of batches kept between their executions; absent downloads every file every time. */
  batchFiles?: BatchFiles;
  /** Asked as each report is sent: whether the slot takes its next execution with the answer (CompleteExecution.claim_next). */
  claimNext?: () => boolean;
}

export interface ExecutionSummary extends ExecutionReport {
  executionId: string;
  outputs: FileInfo[];
  /** False when the runner lost the execution and said nothing more about it. */
  reported: boolean;
  /** The execution the service handed over with the report (claimNext), for this slot to run next. */
  next?: Assignment;
}

/**
 * Runs `assignment` in runner slot `slot` and reports how it ended. Aborting `signal` stops the
 * script; its reason (a StopReason) decides what is reported: shutdown → infrastructure error,
 * cancelled → cancelled (outputs are still collected), lost → nothing at all.
 */
export async function executeAssignment(
  deps: ExecuteDeps,
  runnerId: string,
  assignment: Assignment,
  signal: AbortSignal,
  slot = 0,
): Promise<ExecutionSummary> {
  const execution = assignment.execution;
  if (execution === undefined) {
    throw new Error("assignment without execution");
  }
  const call = { runnerId, executionId: execution.id };
  const resend = <T>(operation: () => Promise<T>) =>
    retryTransient(operation, {
      policy: deps.retryPolicy,
      onRetry: (error, attempt, delayMs) =>
        deps.logger.warn("call failed; retrying", { execution: execution.id, attempt, delay_ms: Math.round(delayMs), error: String(error) }),
    });

  const logs = createLogShipper({
    send: async (entries) => {
      await resend(() => deps.client.appendLogs({ ...call, entries }));
    },
    logger: deps.logger,
    flushIntervalMs: deps.logFlushIntervalMs,
  });

  // Recorded with the execution's log, so nobody mistakes this run for a fully isolated one.
  for (const warning of deps.sandbox?.warnings ?? []) {
    logs.append("system", `sandbox: ${warning}`);
  }

  let report: ExecutionReport;
  let outputs: FileInfo[] = [];
  let workspace: Workspace | undefined;
  try {
    workspace = await createWorkspace(deps.workRoot, execution.id, deps.sandbox?.dropPrivileges !== undefined);
    const result = await runInWorkspace(deps, { assignment, execution, workspace, logs, signal, slot });
    report = result.report;
    // Partial results of a failed, timed-out or cancelled run are still worth keeping.
    if (result.ran && stopReasonOf(signal) !== "lost") {
      const collected = await collectOutputs(deps, workspace, logs, (files) =>
        resend(() => deps.client.createOutputUploads({ ...call, outputs: files })),
      ).catch((error: unknown) => ({ error: errorText(error) }));
      if ("error" in collected) {
        // The outputs are part of the result: reporting success without them would be a lie.
        logs.append("system", collected.error);
        report = infrastructureFailure(collected.error);
      } else {
        outputs = collected.outputs;
      }
    }
  } catch (error) {
    report = infrastructureFailure(`runner error: ${errorText(error)}`);
    deps.logger.error("execution failed inside the runner", { execution: execution.id, error });
  } finally {
    await workspace?.remove().catch((error: unknown) =>
      deps.logger.warn("could not remove working directory", { dir: workspace?.dir, error: String(error) }),
    );
  }

  if (stopReasonOf(signal) === "lost") {
    // Another runner may already hold it; anything said now would only confuse its record.
    await logs.close();
    return { executionId: execution.id, outputs: [], ...report, reported: false };
  }
  // Failures without an exit code come from the runner, not the script's own output, so the
  // log would otherwise not explain them.
  if ((report.outcome === Outcome.FAILED || report.outcome === Outcome.INFRASTRUCTURE_ERROR) && report.exitCode === undefined) {
    logs.append("system", report.errorMessage);
  }
  const finalEntries = deps.completionStoresLogs === true ? await logs.finish() : await logs.close().then(() => []);
  const completed = await resend(() =>
    deps.client.completeExecution({
      ...call,
      outcome: report.outcome,
      exitCode: report.exitCode,
      errorMessage: report.errorMessage,
      outputs,
      finishedAt: timestampFromDate(new Date()),
      finalEntries,
      claimNext: deps.claimNext?.() ?? false,
    }),
  );
  return { executionId: execution.id, outputs, ...report, reported: true, next: completed.next };
}

interface RunInput {
  assignment: Assignment;
  execution: Execution;
  workspace: Workspace;
  logs: LogShipper;
  signal: AbortSignal;
  slot: number;
}

async function runInWorkspace(deps: ExecuteDeps, input: RunInput): Promise<{ report: ExecutionReport; ran: boolean }> {
  const { assignment, execution, workspace, logs, signal } = input;
  const runtime = deps.runtimes.resolve(execution.runtime, assignment.runtimeName);
  if (runtime === undefined) {
    return { report: infrastructureFailure(`runtime '${execution.runtime}' is not available on this runner`), ran: false };
  }
  const script = execution.script;
  if (script === undefined || assignment.scriptDownload === undefined) {
    return { report: infrastructureFailure("the assignment carries no script"), ran: false };
  }

  const batch = execution.batchId === "" || deps.batchFiles === undefined ? undefined : { id: execution.batchId, files: deps.batchFiles };
  const fetchProblem = await fetchFiles(workspace, batch, script, assignment.scriptDownload, execution.inputs, assignment.inputDownloads);
  if (fetchProblem !== undefined) {
    return { report: infrastructureFailure(fetchProblem), ran: false };
  }
  const stoppedEarly = stopReasonOf(signal);
  if (stoppedEarly !== undefined) {
    return { report: STOPPED[stoppedEarly], ran: false };
  }

  const sandbox = deps.sandbox;
  const uid = (sandbox?.dropPrivileges?.uidBase ?? 0) + input.slot;
  if (sandbox?.dropPrivileges !== undefined) {
    await workspace.handOver(uid);
  }
  let cgroup: ExecutionCgroup | undefined;
  try {
    // Named after the working directory, which is unique even for a re-delivered assignment.
    cgroup = sandbox === undefined ? undefined : await createExecutionCgroup(sandbox.cgroups, path.basename(workspace.dir), sandbox.limits);
    const command = buildCommand({
      runtime,
      scriptName: script.name,
      args: execution.args,
      env: execution.env,
      workDir: workspace.dir,
      sandbox:
        sandbox === undefined
          ? undefined
          : { capabilities: sandbox, network: execution.network, uid, cgroupProcsFiles: cgroup?.procsFiles ?? [] },
    });
    const timeoutMs = assignment.timeoutSeconds * 1000;
    const result = await runProcess(command, {
      timeoutMs,
      killGraceMs: deps.killGraceMs,
      onLine: (stream, line) => logs.append(stream, line),
      onOutputEnd: deps.completionStoresLogs === true ? () => logs.holdForReport(OUTPUT_END_HOLD_MS) : undefined,
      signal,
      killStragglers: cgroup?.killAll,
    });
    const report = reportFromProcess(result, {
      timeoutMs,
      limits: sandbox?.prlimit !== undefined || cgroup !== undefined ? sandbox?.limits : undefined,
      findings: cgroup?.findings(),
    });
    const started = result.termination.kind !== "spawn_failed" && result.termination.kind !== "setup_failed";
    return { report, ran: started };
  } finally {
    // The run's result stands: a cgroup left behind is swept with the runner's own at the latest.
    await cgroup?.remove().catch((error: unknown) =>
      deps.logger.warn("could not remove the execution's cgroup", { execution: execution.id, error: String(error) }),
    );
  }
}

/** Fetches the script and every input; the problem in words, or undefined when all arrived. */
async function fetchFiles(
  workspace: Workspace,
  /** Where files of the execution's batch are kept, when it is in one. */
  batch: { id: string; files: BatchFiles } | undefined,
  script: FileInfo,
  scriptGrant: TransferGrant,
  inputs: readonly FileInfo[],
  inputGrants: readonly TransferGrant[],
): Promise<string | undefined> {
  const jobs: { kind: string; file: FileInfo; grant: TransferGrant | undefined }[] = [
    { kind: "script", file: script, grant: scriptGrant },
    ...inputs.map((file) => ({ kind: "input", file, grant: inputGrants.find((grant) => grant.name === file.name) })),
  ];
  for (const { kind, file, grant } of jobs) {
    if (grant === undefined) {
      return `could not fetch ${kind} '${file.name}': the assignment carries no download grant for it`;
    }
    const expected = { sizeBytes: Number(file.sizeBytes), sha256: file.sha256 };
    try {
      await workspace.fetch(file.name, expected, async (target) => {
        // The batch's earlier executions on this runner fetched the same script, most often.
        if (batch !== undefined && (await batch.files.writeTo(batch.id, expected, target))) {
          return;
        }
        await downloadFile(grant, target, expected);
        await batch?.files.keep(batch.id, expected, target);
      });
    } catch (error) {
      return `could not fetch ${kind} '${file.name}': ${errorText(error)}`;
    }
  }
  return undefined;
}

/** Uploads the files the script produced and returns them as recorded. */
async function collectOutputs(
  deps: ExecuteDeps,
  workspace: Workspace,
  logs: LogShipper,
  requestUploads: (files: FileInfo[]) => Promise<{ uploads: TransferGrant[] }>,
): Promise<{ outputs: FileInfo[] }> {
  const scan = await workspace.findOutputs(deps.maxOutputFiles);
  for (const name of scan.unsafeNames) {
    logs.append("system", `output ${JSON.stringify(name)} not collected: its name cannot be stored`);
  }
  if (scan.overLimit) {
    logs.append("system", `only the first ${deps.maxOutputFiles} output files were collected; there were more`);
  }
  if (scan.files.length === 0) {
    return { outputs: [] };
  }
  const infos = scan.files.map(toFileInfo);
  const { uploads } = await requestUploads(infos);
  for (const file of scan.files) {
    await uploadOutput(file, uploads);
  }
  return { outputs: infos };
}

async function uploadOutput(file: OutputFile, grants: readonly TransferGrant[]): Promise<void> {
  const grant = grants.find((candidate) => candidate.name === file.name);
  if (grant === undefined) {
    throw new Error(`could not upload output '${file.name}': no upload grant was issued for it`);
  }
  try {
    await uploadFile(grant, file.path, file.sizeBytes);
  } catch (error) {
    throw new Error(`could not upload output '${file.name}': ${errorText(error)}`);
  }
}

function toFileInfo(file: OutputFile): FileInfo {
  return create(FileInfoSchema, { name: file.name, sizeBytes: BigInt(file.sizeBytes), sha256: file.sha256 });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
