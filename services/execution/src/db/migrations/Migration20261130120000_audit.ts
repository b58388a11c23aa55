import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

const TIME = { useTz: true, precision: 3 } as const;

/** The audit: who retried, cancelled or signed in, when, why, and what came of it. */
export class Migration20261130120000_audit extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema.createTable("audit_entries", (table) => {
        table.string("id", 64).primary();
        table.string("account_id", 64).notNullable().references("id").inTable("accounts");
        table.string("actor", 64).notNullable();
        table.string("action", 32).notNullable();
        table.string("execution_id", 64).nullable();
        table.string("root_id", 64).nullable();
        table.string("batch_id", 64).nullable();
        table.string("request_id", 256).notNullable();
        table.text("reason").notNullable();
        table.string("outcome", 255).notNullable();
        table.timestamp("created_at", TIME).notNullable();
        // Each listing is newest first within the account; these serve its three shapes (all,
        // one action, one lineage) with --since as a range on the last column and the id as
        // the tie-breaker of the page position.
        table.index(["account_id", "created_at", "id"], "audit_entries_account_created_index");
        table.index(["account_id", "action", "created_at", "id"], "audit_entries_account_action_index");
        table.index(["account_id", "root_id", "created_at", "id"], "audit_entries_account_root_index");
      }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) => schema.dropTable("audit_entries"));
  }
}
