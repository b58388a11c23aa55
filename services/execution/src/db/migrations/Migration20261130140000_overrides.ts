import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

/** What a retry changed from the execution it retried (`rgrid retry --env …`); null for none. */
export class Migration20261130140000_overrides extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema.alterTable("executions", (table) => {
        table.json("overrides").nullable();
      }),
    );
  }

  override down(): void {
    this.addSchema((schema: Knex.SchemaBuilder) =>
      schema.alterTable("executions", (table) => {
        table.dropColumn("overrides");
      }),
    );
  }
}
