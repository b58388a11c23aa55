// Whole rows of one entity's table, read and written by hand for the hottest statements (a
// retry's): MikroORM's query builder and entity factory cost more CPU than running those
// statements does. The codec is derived from the entity's metadata once, so a column added to
// the entity is read and written here too, with the conversions MikroORM applies: JSON as text,
// big integers as numbers, and on SQLite times as milliseconds and booleans as 0 or 1 (knex
// binds Dates and booleans that way on SQLite; PostgreSQL takes them as they are).
import { BigIntType, JsonType } from "@mikro-orm/core";
import type { EntityProperty, MetadataStorage } from "@mikro-orm/core";

type Storage = "json" | "datetime" | "boolean" | "number" | "plain";

interface Column {
  property: string;
  name: string;
  storage: Storage;
}

export interface RowCodec<T> {
  /** The table's name, quoted. */
  table: string;
  /**
   * Every column, quoted and comma-separated, to select instead of `*`: a statement PostgreSQL
   * keeps prepared must not change its result's shape when a later migration adds a column.
   */
  columns: string;
  /** The columns of these properties only, as `columns` lists them; fromRow reads rows of them. */
  columnsOf(properties: readonly string[]): string;
  /** `insert into <table> (every column) values (?, …)`. */
  insertSql: string;
  /** `?, …`: one placeholder per column, in `columns`' order, for an insert's values or its `select`. */
  placeholders: string;
  /** `insert into <table> (every column) values (?, …), …` for `count` rows, bound with each row's insertValues in turn. */
  insertRowsSql(count: number): string;
  insertValues(entity: T): unknown[];
  /**
   * `"column" = ?, …` for the properties `changes` holds, in column order (so the same
   * properties always make the same SQL), and the values to bind for them.
   */
  assignments(changes: Partial<T>): { sql: string; values: unknown[] };
  /** The entity (or, for a row of some columns, the part of it) that a row holds. */
  fromRow(row: Record<string, unknown>): T;
}

const codecs = new WeakMap<object, RowCodec<unknown>>();

/** The codec of `entityName`'s table; made once per ORM (its metadata), which an EntityManager or a SqlSession gives. */
export function rowCodec<T>(orm: { getMetadata(): MetadataStorage }, entityName: string): RowCodec<T> {
  const meta = orm.getMetadata().get(entityName);
  let codec = codecs.get(meta);
  if (codec === undefined) {
    codec = createCodec(meta.tableName, Object.values(meta.properties).map(columnOf));
    codecs.set(meta, codec);
  }
  return codec as RowCodec<T>;
}

function columnOf(property: EntityProperty): Column {
  return { property: property.name, name: property.fieldNames[0] as string, storage: storageOf(property) };
}

function storageOf(property: EntityProperty): Storage {
  if (property.customType instanceof BigIntType) {
    return "number";
  }
  if (property.customType instanceof JsonType) {
    return "json";
  }
  switch (property.runtimeType) {
    case "Date":
      return "datetime";
    case "boolean":
      return "boolean";
    case "number":
      return "number";
    default:
      return "plain";
  }
}

function createCodec(table: string, columns: readonly Column[]): RowCodec<unknown> {
  const quoted = (list: readonly Column[]) => list.map((column) => `"${column.name}"`).join(", ");
  const names = quoted(columns);
  const placeholders = columns.map(() => "?").join(", ");
  const row = `(${placeholders})`;
  return {
    table: `"${table}"`,
    columns: names,
    columnsOf(properties) {
      const chosen = columns.filter((column) => properties.includes(column.property));
      if (chosen.length !== properties.length) {
        throw new Error(`not all of ${properties.join(", ")} are columns of ${table}`);
      }
      return quoted(chosen);
    },
    insertSql: `insert into "${table}" (${names}) values ${row}`,
    placeholders,
    insertRowsSql: (count) => `insert into "${table}" (${names}) values ${Array.from({ length: count }, () => row).join(", ")}`,
    insertValues: (entity) => columns.map((column) => toDatabase(column.storage, (entity as Record<string, unknown>)[column.property])),
    assignments(changes) {
      const changed = columns.filter((column) => column.property in (changes as object));
      if (changed.length !== Object.keys(changes as object).length) {
        throw new Error(`not all of ${Object.keys(changes as object).join(", ")} are columns of ${table}`);
      }
      return {
        sql: changed.map((column) => `"${column.name}" = ?`).join(", "),
        values: changed.map((column) => toDatabase(column.storage, (changes as Record<string, unknown>)[column.property])),
      };
    },
    fromRow(row) {
      const entity: Record<string, unknown> = {};
      for (const column of columns) {
        if (column.name in row) {
          entity[column.property] = fromDatabase(column.storage, row[column.name]);
        }
      }
      return entity;
    },
  };
}

function toDatabase(storage: Storage, value: unknown): unknown {
  if (value === null || value === undefined) {
    return null;
  }
  return storage === "json" ? JSON.stringify(value) : value;
}

function fromDatabase(storage: Storage, value: unknown): unknown {
  if (value === null || value === undefined) {
    return null;
  }
  switch (storage) {
    case "json":
      return typeof value === "string" ? JSON.parse(value) : value;
    case "datetime":
      return value instanceof Date ? value : new Date(typeof value === "string" && /^\d+$/.test(value) ? Number(value) : (value as number | string));
    case "boolean":
      return Boolean(value);
    case "number":
      return Number(value);
    default:
      return value;
  }
}
