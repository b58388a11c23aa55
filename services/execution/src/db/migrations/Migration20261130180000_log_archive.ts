import type { Knex } from "@mikro-orm/knex";
import { SchemaMigration } from "./schema-migration";

/**
 * Whether a finished execution's log lines were moved out of the database into one object in
 * storage; the archiver looks only at finished executions not yet archived, through an index
 * that holds only those.
 */
export class Migration20261130180000_log_archive extends SchemaMigration {
  override up(): void {
    this.addSchema((schema) =>
      schema.alterTable("executions", (table) => {
        table.boolean("logs_archived").notNullable().defaultTo(false);
      }),
    );
    this.addSql(
      "create index executions_logs_to_archive on executions (finished_at) where logs_archived = false and finished_at is not null",
    );
  }

  override down(): void {
    this.addSql("drop index executions_logs_to_archive");
    this.addSchema((schema: Knex.SchemaBuilder) =>
      schema.alterTable("executions", (table) => {
        table.dropColumn("logs_archived");
      }),
    );
  }
}
