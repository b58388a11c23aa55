import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

const TIME = { useTz: true, precision: 3 } as const;

/** Bulk retries by cause (RetryWhere): each operation, and the lineages it takes. */
export class Migration20261130160000_retry_operations extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema
        .createTable("retry_operations", (table) => {
          table.string("id", 64).primary();
          table.string("account_id", 64).notNullable().references("id").inTable("accounts");
          table.string("actor", 64).notNullable();
          table.string("request_id", 256).notNullable();
          table.json("filter").notNullable();
          table.text("reason").notNullable();
          table.string("state", 16).notNullable();
          table.integer("total").notNullable();
          table.timestamp("created_at", TIME).notNullable();
          table.timestamp("finished_at", TIME).nullable();
          table.timestamp("lease_until", TIME).nullable();
          // A re-sent RetryWhere finds its operation; two racing ones cannot both make one.
          table.unique(["account_id", "request_id"], { indexName: "retry_operations_request_unique" });
          // The operations still to be worked through, for the replica that carries them on.
          table.index(["state", "lease_until"], "retry_operations_state_lease_index");
        })
        .createTable("retry_operation_items", (table) => {
          table.string("operation_id", 64).notNullable().references("id").inTable("retry_operations");
          table.integer("position").notNullable();
          table.string("original_id", 64).notNullable();
          table.string("retry_id", 64).nullable();
          table.text("skipped").notNullable();
          table.boolean("done").notNullable();
          table.primary(["operation_id", "position"]);
          // The next items still to do, and the counts of those done.
          table.index(["operation_id", "done"], "retry_operation_items_done_index");
        }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) => schema.dropTable("retry_operation_items").dropTable("retry_operations"));
  }
}
