import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

const TIME = { useTz: true, precision: 3 } as const;

export class Migration20250601000000_initial extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema
        .createTable("accounts", (table) => {
          table.string("id", 64).primary();
          table.string("name", 255).notNullable().unique();
          table.timestamp("created_at", TIME).notNullable();
        })
        .createTable("api_keys", (table) => {
          table.string("id", 64).primary();
          table.string("account_id", 64).notNullable().references("id").inTable("accounts");
          table.string("key_hash", 64).notNullable().unique();
          table.timestamp("created_at", TIME).notNullable();
          table.index(["account_id"]);
        })
        .createTable("runners", (table) => {
          table.string("id", 64).primary();
          table.string("name", 255).notNullable();
          table.json("runtimes").notNullable();
          table.timestamp("registered_at", TIME).notNullable();
          table.timestamp("last_seen_at", TIME).notNullable();
        })
        .createTable("executions", (table) => {
          table.string("id", 64).primary();
          table.string("account_id", 64).notNullable().references("id").inTable("accounts");
          table.string("status", 16).notNullable();
          table.text("script_name").notNullable();
          table.bigInteger("script_size_bytes").notNullable();
          table.string("script_sha256", 64).notNullable();
          table.string("runtime", 80).notNullable();
          table.string("runtime_name", 32).notNullable();
          table.json("args").notNullable();
          table.json("env").notNullable();
          table.json("inputs").notNullable();
          table.json("metadata").notNullable();
          table.json("outputs").notNullable();
          table.integer("timeout_seconds").notNullable();
          table.timestamp("created_at", TIME).notNullable();
          table.timestamp("started_at", TIME).nullable();
          table.timestamp("finished_at", TIME).nullable();
          table.integer("exit_code").nullable();
          table.text("error_message").notNullable();
          table.string("runner_id", 64).nullable();
          table.string("retry_of", 64).nullable().references("id").inTable("executions");
          table.string("root_id", 64).notNullable();
          table.integer("attempt").notNullable();
          table.string("retry_kind", 16).notNullable();
          table.string("retried_by", 64).nullable();
          table.string("request_id", 128).nullable();
          // Creates and retries share one idempotency space per account; NULLs never collide.
          table.unique(["account_id", "request_id"], { indexName: "executions_account_request_unique" });
          // Listing walks an account's executions newest first with (created_at, id) as the key.
          table.index(["account_id", "created_at", "id"], "executions_account_listing_index");
          // Claims look for the oldest queued execution of the runner's runtimes.
          table.index(["status", "runtime_name", "created_at"], "executions_claim_index");
          table.index(["retry_of"], "executions_retry_of_index");
        })
        .createTable("log_entries", (table) => {
          table.string("execution_id", 64).notNullable().references("id").inTable("executions");
          table.bigInteger("sequence").notNullable();
          table.string("stream", 16).notNullable();
          table.text("line").notNullable();
          table.timestamp("time", TIME).notNullable();
          table.primary(["execution_id", "sequence"]);
        }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) =>
      schema
        .dropTable("log_entries")
        .dropTable("executions")
        .dropTable("runners")
        .dropTable("api_keys")
        .dropTable("accounts"),
    );
  }
}
