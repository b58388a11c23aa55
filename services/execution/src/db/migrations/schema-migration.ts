import type { Knex } from "@mikro-orm/knex";
import { Migration } from "@mikro-orm/migrations";

/**
 * A migration written with the knex schema builder instead of dialect SQL, so the same file
 * produces the right statements on SQLite and PostgreSQL.
 */
export abstract class SchemaMigration extends Migration {
  protected addSchema(build: (schema: Knex.SchemaBuilder) => Knex.SchemaBuilder): void {
    const knex = this.getKnex();
    for (const statement of build(knex.schema).toSQL()) {
      this.addSql(knex.raw(statement.sql, [...(statement.bindings ?? [])]));
    }
  }
}
