import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

const TIME = { useTz: true, precision: 3 } as const;

/**
 * Sandbox reports, leases, cancellation, automatic retries, batches and the log cap. Every new
 * column has a default, so executions recorded before this migration read as they behaved.
 */
export class Migration20261127000000_runners_for_real extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema
        .alterTable("runners", (table) => {
          table.json("sandbox_warnings").notNullable().defaultTo("[]");
        })
        .alterTable("executions", (table) => {
          table.boolean("network").notNullable().defaultTo(false);
          table.integer("max_retries").notNullable().defaultTo(0);
          table.json("retry_on_exit_codes").notNullable().defaultTo("[]");
          table.string("batch_id", 64).nullable();
          table.integer("batch_parallelism").notNullable().defaultTo(0);
          table.string("failure_kind", 16).nullable();
          table.integer("auto_retry_number").notNullable().defaultTo(0);
          table.text("retry_reason").notNullable().defaultTo("");
          table.json("sandbox_warnings").notNullable().defaultTo("[]");
          table.timestamp("cancel_requested_at", TIME).nullable();
          table.timestamp("not_before", TIME).nullable();
          table.bigInteger("log_bytes").notNullable().defaultTo(0);
          table.boolean("logs_truncated").notNullable().defaultTo(false);
          table.boolean("auto_retry_pending").notNullable().defaultTo(false);
          // A batch's executions, for `rgrid list`, batch retries and the batch's parallelism.
          table.index(["account_id", "batch_id"], "executions_account_batch_index");
          // The lease sweep looks for running executions by runner.
          table.index(["status", "runner_id"], "executions_status_runner_index");
          // The lease sweep makes the automatic retries still missing, oldest failure first.
          table.index(["auto_retry_pending", "finished_at"], "executions_auto_retry_pending_index");
        }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) =>
      schema
        .alterTable("executions", (table) => {
          table.dropIndex([], "executions_account_batch_index");
          table.dropIndex([], "executions_status_runner_index");
          table.dropIndex([], "executions_auto_retry_pending_index");
          table.dropColumns(
            "network",
            "max_retries",
            "retry_on_exit_codes",
            "batch_id",
            "batch_parallelism",
            "failure_kind",
            "auto_retry_number",
            "retry_reason",
            "sandbox_warnings",
            "cancel_requested_at",
            "not_before",
            "log_bytes",
            "logs_truncated",
            "auto_retry_pending",
          );
        })
        .alterTable("runners", (table) => {
          table.dropColumn("sandbox_warnings");
        }),
    );
  }
}
