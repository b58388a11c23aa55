import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

const TIME = { useTz: true, precision: 3 } as const;

/** Browser sessions and sign-in links for the console, and the lineage lookups its views make. */
export class Migration20261130000000_console extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema
        .createTable("sessions", (table) => {
          table.string("id", 64).primary();
          table.string("account_id", 64).notNullable().references("id").inTable("accounts");
          table.string("token_hash", 64).notNullable().unique();
          table.string("api_key_id", 64).nullable();
          table.timestamp("created_at", TIME).notNullable();
          table.timestamp("expires_at", TIME).notNullable();
          table.timestamp("revoked_at", TIME).nullable();
          // Expired sessions are pruned by age.
          table.index(["expires_at"], "sessions_expires_index");
        })
        .createTable("sign_in_tokens", (table) => {
          table.string("token_hash", 64).primary();
          table.string("account_id", 64).notNullable().references("id").inTable("accounts");
          table.timestamp("created_at", TIME).notNullable();
          table.timestamp("expires_at", TIME).notNullable();
          table.timestamp("used_at", TIME).nullable();
        })
        .alterTable("executions", (table) => {
          // A lineage's executions (the console's chain), and "unresolved": is there a completed
          // execution anywhere in this lineage?
          table.index(["root_id", "status"], "executions_root_status_index");
        }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) =>
      schema
        .alterTable("executions", (table) => {
          table.dropIndex([], "executions_root_status_index");
        })
        .dropTable("sign_in_tokens")
        .dropTable("sessions"),
    );
  }
}
