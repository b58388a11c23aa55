// The command line: commander parses flags into each command's typed options, and runCli is the
// one place errors become messages and exit codes.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { isBatchId } from "@rgrid/common/ids";
import type { Transport } from "@connectrpc/connect";
import type { AuditAction, ExecutionStatus } from "@rgrid/proto/execution";
import { readConfigFile, resolveConnection } from "./config";
import type { CliEnvironment, Connection } from "./config";
import type { Clock, Output, ServerContext } from "./context";
import { ExitCode, UsageError } from "./errors";
import type { OverrideFlags } from "./commands/retry";
import { load } from "./lazy";
import { STATUS_CHOICES } from "./status-names";
import { parseSince } from "./since";
import { AUDIT_ACTION_CHOICES } from "./audit-action-names";
import { StartTimeError, parseDelay, parseStartTime } from "./start-times";
import { ASK_ABOVE, CONDITIONS_HELP } from "./retry-where-terms";

export interface CliDeps {
  environment: CliEnvironment;
  output: Output;
  clock: Clock;
  /** Where relative script and input paths start, and where outputs land by default. */
  cwd: string;
  /** How to reach the server once its address and key are known. */
  createTransport: (connection: Connection) => Transport;
  /** Pause between status polls of `run --wait` (batches, automatic retries), `cancel` and `retry --where`. */
  pollIntervalMs: number;
  /** Asks the person at the terminal a yes/no question; absent when stdin is not a terminal. */
  confirm?: (question: string) => Promise<boolean>;
}

/** The server's limits, checked here too so a bad flag is a usage error before anything is sent. */
const MAX_RETRIES_LIMIT = 10;
const MAX_PARALLEL = 10_000;

const HELP_FOOTER = `
Configuration:
  RGRID_API_URL and RGRID_API_KEY override the config file ($RGRID_CONFIG, default
  ~/.rgrid/config.json), which 'rgrid init' and the local grid ('npm start') write.

Exit codes:
  0  success
  1  the operation failed or the server refused it
  2  usage error: bad command line, missing script file, or no API key configured
  3  cannot reach the server (after re-sending with backoff)`;

/** Runs one invocation and returns its exit code; never throws, never exits. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const { output } = deps;
  let exitCode: number = ExitCode.success;
  let apiUrl: string | undefined;

  const openServer = async (): Promise<ServerContext> => {
    const connection = resolveConnection(deps.environment, await readConfigFile(deps.environment.configPath));
    apiUrl = connection.apiUrl;
    return load.serverContext().createServerContext({
      transport: deps.createTransport(connection),
      resendPolicy: deps.environment.resendPolicy,
      output,
      clock: deps.clock,
    });
  };

  const program = buildProgram(deps, openServer, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed the problem (or the help the user asked for).
      return error.exitCode === 0 ? ExitCode.success : ExitCode.usage;
    }
    const failure = load.failures().describeFailure(error, apiUrl);
    for (const line of failure.lines) {
      output.stderr(line);
    }
    return failure.exitCode;
  }
}

function buildProgram(
  deps: CliDeps,
  openServer: () => Promise<ServerContext>,
  finish: (exitCode: number) => void,
): Command {
  const { output } = deps;
  const program = new Command("rgrid")
    .description("Run scripts remotely as simply as running them locally, and retry the ones that failed.")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => writeLines(output.stdout, text),
      writeErr: (text) => writeLines(output.stderr, text),
      outputError: (text, write) => write(text.replace(/^error:/, "Error:")),
    })
    .showHelpAfterError("(run 'rgrid --help' for usage)")
    .addHelpText("after", HELP_FOOTER);

  program
    .command("init")
    .description("write the config file with the server's URL and your API key")
    .option("--api-url <url>", "the execution service's URL")
    .option("--api-key <key>", "your API key")
    .option("--json", "print the result as JSON")
    .action(async (flags: { apiUrl?: string; apiKey?: string; json?: boolean }) => {
      finish(
        await load.initCommand().initCommand(
          { apiUrl: flags.apiUrl, apiKey: flags.apiKey, json: flags.json === true },
          { environment: deps.environment, output },
        ),
      );
    });

  program
    .command("run")
    .description("upload a script and its input files, and run it on a runner")
    .argument("<script>", "the script to run (.py runs with python, .js/.mjs/.cjs with node)")
    .argument("[args...]", "arguments for the script; those naming local files are uploaded as inputs")
    .option("--runtime <runtime>", "runtime such as python, node or python:3.11 (default: from the extension)")
    .option("--env <KEY=VALUE>", "environment variable for the script (repeatable)", keyValue("--env"), {})
    .option("--metadata <KEY=VALUE>", "label to record with the execution (repeatable)", keyValue("--metadata"), {})
    .option("--timeout <seconds>", "stop the script after this many seconds", positiveInteger)
    .option("--network", "let the script use the network (it runs without one otherwise)")
    .option(
      "--max-retries <n>",
      `retry automatically up to n times (${MAX_RETRIES_LIMIT} at most) after transient failures (default: the server's, 2)`,
      integerFrom(0, MAX_RETRIES_LIMIT),
    )
    .option("--retry-on-exit <code>", "also retry automatically when the script exits with this code (repeatable)", exitCodeList, [])
    .option("--batch <pattern>", "run the script once per matching file (*, ?, **, {a,b}, [ab] and directories), the file as its first argument")
    .option("--parallel <n>", "with --batch, run at most n of its executions at once (default: 0, no limit)", integerFrom(0, MAX_PARALLEL))
    .option(
      "--wait",
      "follow the execution, print its logs, download its output files into the current directory " +
        "(overwriting files of the same name), exit with the script's exit code; with --batch, wait for every " +
        "execution and print a summary (exit 1 unless all completed)",
    )
    .option("--remote-only", "with --wait, leave the output files on the server (fetch them later with 'rgrid download')")
    .option("--json", "print the execution as JSON")
    .addHelpText("after", "\nPut '--' before script arguments that start with '-': rgrid run job.py -- --verbose")
    .action(
      async (
        script: string,
        args: string[],
        flags: {
          runtime?: string;
          env: Record<string, string>;
          metadata: Record<string, string>;
          timeout?: number;
          network?: boolean;
          maxRetries?: number;
          retryOnExit: number[];
          batch?: string;
          parallel?: number;
          wait?: boolean;
          remoteOnly?: boolean;
          json?: boolean;
        },
      ) => {
        finish(
          await load.runCommand().runCommand(
            {
              script,
              args,
              runtime: flags.runtime,
              settings: {
                env: flags.env,
                metadata: flags.metadata,
                timeoutSeconds: flags.timeout,
                network: flags.network === true,
                maxRetries: flags.maxRetries,
                retryOnExitCodes: flags.retryOnExit,
              },
              batch: flags.batch,
              parallel: flags.parallel,
              wait: flags.wait === true,
              remoteOnly: flags.remoteOnly === true,
              json: flags.json === true,
              cwd: deps.cwd,
              pollIntervalMs: deps.pollIntervalMs,
            },
            await openServer(),
          ),
        );
      },
    );

  program
    .command("status")
    .description("show an execution's status, times, outcome and retry lineage")
    .argument("<id>", "execution id (exec_...)")
    .option("--show-values", "print the values of the environment variables a retry changed, not only their names")
    .option("--json", "print the execution as JSON")
    .action(async (executionId: string, flags: { showValues?: boolean; json?: boolean }) => {
      finish(
        await load
          .statusCommand()
          .statusCommand({ executionId, showValues: flags.showValues === true, json: flags.json === true }, await openServer()),
      );
    });

  program
    .command("logs")
    .description("print an execution's logs (stdout lines to stdout, stderr lines to stderr)")
    .argument("<id>", "execution id (exec_...)")
    .option("--follow", "keep printing new lines until the execution ends")
    .option("--json", "print the log entries as one JSON array")
    .action(async (executionId: string, flags: { follow?: boolean; json?: boolean }) => {
      finish(
        await load.logsCommand().logsCommand(
          { executionId, follow: flags.follow === true, json: flags.json === true },
          await openServer(),
        ),
      );
    });

  program
    .command("list")
    .description("list your executions, newest first")
    .option("--status <status>", `only this status (repeatable): ${STATUS_CHOICES.join(", ")}`, statusFilter, [])
    .option("--batch <batch_id>", "only the executions of this batch (batch_...)", batchIdOption)
    .option("--limit <n>", "show at most this many", positiveInteger, 20)
    .option("--json", "print the executions as one JSON array")
    .action(async (flags: { status: ExecutionStatus[]; batch?: string; limit: number; json?: boolean }) => {
      finish(
        await load
          .listCommand()
          .listCommand(
            { statuses: flags.status, batchId: flags.batch, limit: flags.limit, json: flags.json === true },
            await openServer(),
          ),
      );
    });

  program
    .command("retry")
    .description("re-run an execution with the same script, runtime, args, env and input files")
    .argument("[id]", "execution id (exec_...)")
    .option("--force", "retry even when the execution has not finished (it keeps running)")
    .option("--batch <batch_id>", "retry the finished executions of a batch instead of one execution", batchIdOption)
    .option("--failed-only", "with --batch, retry only the failed and timed-out executions")
    .option(
      "--where <conditions>",
      "retry, on the server, the latest attempt of every lineage of yours whose latest attempt meets all these " +
        "conditions (repeatable): " + CONDITIONS_HELP,
      collect,
      [],
    )
    .option("--dry-run", "with --where, only show how many match and the first of them")
    .option("--yes", `with --where, retry more than ${ASK_ABOVE} without asking`)
    .option("--reason <text>", REASON_HELP, reasonOption)
    .addOption(
      new Option("--in <delay>", "make the retry now but queue it for this long first: 30s, 10m, 2h, 1d, 1h30m (at most 7d)")
        .argParser(startTimeOption(parseDelay))
        .conflicts("at"),
    )
    .addOption(
      new Option(
        "--at <time>",
        "make the retry now but queue it until this time: HH:MM (local time, today or else tomorrow) or " +
          "ISO 8601 such as 2025-03-01T14:30 (local) or 2025-03-01T14:30:00Z; at most 7 days ahead",
      ).argParser(startTimeOption((value) => parseStartTime(value, deps.clock.now()))),
    )
    .option("--env <KEY=VALUE>", "change: set this environment variable in the retry (repeatable)", keyValue("--env"), {})
    .option("--unset-env <KEY>", "change: remove this environment variable in the retry (repeatable)", collect, [])
    .option("--args [args...]", "change: run the retry with these args instead (none: with no args); put it last")
    .option("--timeout <seconds>", "change: stop the retry after this many seconds", positiveInteger)
    .option("--runtime <runtime>", "change: run the retry on this runtime, such as python:3.12")
    .option("--script <file>", "change: run this new version of the script (uploaded; the inputs are still copied server-side)")
    .option("--show-values", "print the values of changed environment variables, not only their names")
    .option("--json", "print the new execution (with --batch: every item) as JSON")
    .addHelpText(
      "after",
      "\nA delayed retry (--in, --at) stays queued until its time; 'rgrid cancel <id>' cancels it meanwhile." +
        "\nThe retry records what --env, --unset-env, --args, --timeout, --runtime and --script change; 'rgrid status' shows it.",
    )
    .action(
      async (
        executionId: string | undefined,
        flags: RetryFlags,
      ) => {
        const json = flags.json === true;
        const startAfter = flags.in !== undefined ? { delayMs: flags.in } : flags.at !== undefined ? { at: flags.at } : undefined;
        const overrides = overrideFlagsOf(flags);
        if (flags.where.length > 0) {
          if (executionId !== undefined || flags.batch !== undefined) {
            throw new UsageError("--where chooses the executions to retry; give no execution id or --batch with it");
          }
          if (flags.force === true || startAfter !== undefined || overrides !== undefined) {
            throw new UsageError("--force, --in, --at and the changes (--env, --script, …) apply to the retry of one execution, not to --where");
          }
          const conditions = load.retryConditions();
          let where;
          try {
            where = conditions.parseConditions(flags.where, deps.clock.now());
          } catch (error) {
            throw error instanceof conditions.ConditionError ? new UsageError(`--where: ${error.message}`) : error;
          }
          finish(
            await load.retryWhereCommand().retryWhereCommand(
              {
                where,
                dryRun: flags.dryRun === true,
                yes: flags.yes === true,
                reason: flags.reason,
                json,
                confirm: deps.confirm,
                pollIntervalMs: deps.pollIntervalMs,
              },
              await openServer(),
            ),
          );
          return;
        }
        if (flags.dryRun === true || flags.yes === true) {
          throw new UsageError("--dry-run and --yes go with --where");
        }
        if (flags.batch === undefined) {
          if (executionId === undefined) {
            throw new UsageError("name the execution to retry (rgrid retry <id>), a batch with --batch <batch_id>, or conditions with --where");
          }
          if (flags.failedOnly === true) {
            throw new UsageError("--failed-only chooses among a batch's executions; use it with --batch <batch_id>");
          }
          finish(
            await load.retryCommand().retryCommand(
              {
                executionId,
                force: flags.force === true,
                reason: flags.reason,
                json,
                startAfter,
                overrides,
                showValues: flags.showValues === true,
                cwd: deps.cwd,
              },
              await openServer(),
            ),
          );
          return;
        }
        if (executionId !== undefined) {
          throw new UsageError("give either an execution id or --batch <batch_id>, not both");
        }
        if (flags.force === true) {
          throw new UsageError("--force applies to one execution; a batch retry only retries finished executions");
        }
        if (startAfter !== undefined) {
          throw new UsageError("--in and --at delay the retry of one execution; a batch retry starts at once");
        }
        if (overrides !== undefined) {
          throw new UsageError("--env, --unset-env, --args, --timeout, --runtime and --script change the retry of one execution, not of a batch");
        }
        finish(
          await load
            .retryBatchCommand()
            .retryBatchCommand(
              { batchId: flags.batch, failedOnly: flags.failedOnly === true, reason: flags.reason, json },
              await openServer(),
            ),
        );
      },
    );

  program
    .command("cancel")
    .description("cancel an execution: a queued one at once, a running one by its runner")
    .argument("<id>", "execution id (exec_...)")
    .option("--reason <text>", REASON_HELP, reasonOption)
    .option("--json", "print the execution as JSON")
    .action(async (executionId: string, flags: { reason?: string; json?: boolean }) => {
      finish(
        await load
          .cancelCommand()
          .cancelCommand(
            { executionId, reason: flags.reason, json: flags.json === true, pollIntervalMs: deps.pollIntervalMs },
            await openServer(),
          ),
      );
    });

  program
    .command("download")
    .description("download the output files of a finished execution")
    .argument("<id>", "execution id (exec_...)")
    .option("--dir <directory>", "where to put the files, keeping their relative paths (default: the current directory)")
    .option("--json", "print the downloaded files as one JSON array")
    .addHelpText("after", "\nExisting files with the same path are overwritten.")
    .action(async (executionId: string, flags: { dir?: string; json?: boolean }) => {
      finish(
        await load.downloadCommand().downloadCommand(
          { executionId, dir: flags.dir ?? ".", json: flags.json === true, cwd: deps.cwd },
          await openServer(),
        ),
      );
    });

  program
    .command("history")
    .description("show an execution's lineage, every attempt with the retries and cancels asked of it: who, why, what came of it")
    .argument("<id>", "execution id (exec_...), any attempt of the lineage")
    .option("--json", "print the events as JSON")
    .action(async (executionId: string, flags: { json?: boolean }) => {
      finish(await load.historyCommand().historyCommand({ executionId, json: flags.json === true }, await openServer()));
    });

  program
    .command("audit")
    .description("list your account's retries, cancels and console sign-ins, newest first")
    .option(
      "--since <duration|time>",
      "only entries since then: 30m, 2h, 7d, or a time such as 2025-03-01 or 2025-03-01T14:30",
      sinceOption(() => deps.clock.now()),
    )
    .option("--action <action>", `only this action: ${AUDIT_ACTION_CHOICES.join(", ")}`, auditActionOption)
    .option("--limit <n>", "show at most this many", positiveInteger, 100)
    .option("--json", "print the entries as one JSON array")
    .action(async (flags: { since?: Date; action?: AuditAction; limit: number; json?: boolean }) => {
      finish(
        await load
          .auditCommand()
          .auditCommand({ since: flags.since, action: flags.action, limit: flags.limit, json: flags.json === true }, await openServer()),
      );
    });

  program
    .command("diff")
    .description("compare two executions (say, a failed attempt and its retry): what they ran with, how they ended, where their logs part")
    .argument("<a>", "execution id (exec_...)")
    .argument("<b>", "execution id (exec_...)")
    .option("--show-values", "show environment values (by default only which variables changed)")
    .option("--json", "print the comparison as JSON")
    .addHelpText("after", "\nExits 0 whatever differs: the comparison is a report.")
    .action(async (executionA: string, executionB: string, flags: { showValues?: boolean; json?: boolean }) => {
      finish(
        await load
          .diffCommand()
          .diffCommand(
            { executionA, executionB, showValues: flags.showValues === true, json: flags.json === true },
            await openServer(),
          ),
      );
    });

  return program;
}

/** Commander hands over text with trailing newlines; Output takes lines. */
function writeLines(write: (line: string) => void, text: string): void {
  for (const line of text.replace(/\n$/, "").split("\n")) {
    write(line);
  }
}

interface RetryFlags {
  where: string[];
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  batch?: string;
  failedOnly?: boolean;
  in?: number;
  at?: Date;
  reason?: string;
  env: Record<string, string>;
  unsetEnv: string[];
  /** true when --args was given with no values: run with none. */
  args?: string[] | true;
  timeout?: number;
  runtime?: string;
  script?: string;
  showValues?: boolean;
  json?: boolean;
}

/** The retry's changes, or undefined when it asks for exactly what the original did. */
function overrideFlagsOf(flags: RetryFlags): OverrideFlags | undefined {
  const overrides: OverrideFlags = {
    setEnv: flags.env,
    unsetEnv: flags.unsetEnv,
    args: flags.args === true ? [] : flags.args,
    timeoutSeconds: flags.timeout,
    runtime: flags.runtime,
    script: flags.script,
  };
  const clash = overrides.unsetEnv.find((key) => Object.hasOwn(overrides.setEnv, key));
  if (clash !== undefined) {
    throw new UsageError(`--env and --unset-env both name ${clash}; give one of them`);
  }
  const changesSomething =
    Object.keys(overrides.setEnv).length > 0 ||
    overrides.unsetEnv.length > 0 ||
    [overrides.args, overrides.timeoutSeconds, overrides.runtime, overrides.script].some((value) => value !== undefined);
  return changesSomething ? overrides : undefined;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function keyValue(flag: string): (value: string, previous: Record<string, string>) => Record<string, string> {
  return (value, previous) => {
    const equals = value.indexOf("=");
    if (equals <= 0) {
      throw new InvalidArgumentError(`${flag} takes KEY=VALUE, for example ${flag} MODE=fast.`);
    }
    return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
  };
}

function positiveInteger(value: string): number {
  const number = wholeNumberWithin(value, 1, 2_147_483_647);
  if (number === undefined) {
    throw new InvalidArgumentError("expected a whole number greater than 0.");
  }
  return number;
}

function integerFrom(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = wholeNumberWithin(value, min, max);
    if (number === undefined) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return number;
  };
}

/** Digits only: "1e3", "0x10", " 5" and "-1" are not what a user means by a count. */
function wholeNumberWithin(value: string, min: number, max: number): number | undefined {
  const number = Number(value);
  return /^\d+$/.test(value) && Number.isSafeInteger(number) && number >= min && number <= max ? number : undefined;
}

function exitCodeList(value: string, previous: number[]): number[] {
  return [...previous, integerFrom(1, 255)(value)];
}

/** A parser of start-times.ts whose refusal commander reports as a bad option value. */
function startTimeOption<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      throw error instanceof StartTimeError ? new InvalidArgumentError(error.message) : error;
    }
  };
}

function batchIdOption(value: string): string {
  if (!isBatchId(value)) {
    throw new InvalidArgumentError("expected a batch id: batch_ followed by 32 lowercase hex characters.");
  }
  return value;
}

function statusFilter(value: string, previous: ExecutionStatus[]): ExecutionStatus[] {
  const statuses = value.split(",").map((name) => {
    const status = load.present().parseStatusName(name.trim().toLowerCase());
    if (status === undefined) {
      throw new InvalidArgumentError(`valid statuses are: ${STATUS_CHOICES.join(", ")}.`);
    }
    return status;
  });
  return [...previous, ...statuses];
}

// The server's rule for a reason (RetryExecutionRequest.reason), checked here too so that a bad
// one is a usage error before anything is sent.
const MAX_REASON_CHARS = 500;
const REASON_HELP = `why, in your words (at most ${MAX_REASON_CHARS} characters): recorded in the audit ('rgrid history', 'rgrid audit')`;

function reasonOption(value: string): string {
  // Counted in characters, as the server counts them, not UTF-16 units.
  if ([...value].length > MAX_REASON_CHARS || /[\x00-\x1f\x7f]/.test(value)) {
    throw new InvalidArgumentError(`expected one line of at most ${MAX_REASON_CHARS} characters.`);
  }
  return value;
}

function auditActionOption(value: string): AuditAction {
  const action = load.auditView().parseAuditAction(value);
  if (action === undefined) {
    throw new InvalidArgumentError(`valid actions are: ${AUDIT_ACTION_CHOICES.join(", ")}.`);
  }
  return action;
}

function sinceOption(now: () => Date): (value: string) => Date {
  return (value) => {
    const since = parseSince(value, now());
    if (since === undefined) {
      throw new InvalidArgumentError("expected a duration such as 30m, 2h or 7d, or a time such as 2025-03-01T14:30.");
    }
    return since;
  };
}
