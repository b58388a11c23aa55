import { resolve } from "node:path";

export type DatabaseTarget =
  | { dialect: "sqlite"; /** ":memory:" or an absolute file path. */ file: string }
  | { dialect: "postgresql"; url: string };

/**
 * Reads RGRID_DATABASE_URL: `sqlite:<path>` (relative to `cwd`), `sqlite::memory:`, or
 * `postgres://user@host:port/db`. Returns a problem string instead when it is none of these.
 */
export function parseDatabaseUrl(value: string, cwd: string): DatabaseTarget | string {
  if (value.startsWith("sqlite:")) {
    const path = value.slice("sqlite:".length);
    if (path === "") {
      return `RGRID_DATABASE_URL "${value}" names no file; use sqlite:<path> or sqlite::memory:`;
    }
    return { dialect: "sqlite", file: path === ":memory:" ? path : resolve(cwd, path) };
  }
  if (value.startsWith("postgres://") || value.startsWith("postgresql://")) {
    try {
      const parsed = new URL(value);
      if (parsed.pathname.length <= 1) {
        return `RGRID_DATABASE_URL "${redactPassword(value)}" names no database`;
      }
    } catch {
      return `RGRID_DATABASE_URL "${redactPassword(value)}" is not a valid URL`;
    }
    return { dialect: "postgresql", url: value };
  }
  return `RGRID_DATABASE_URL must start with sqlite: or postgres://, got "${redactPassword(value)}"`;
}

/** The URL with any password replaced, for error messages and logs. */
export function redactPassword(value: string): string {
  return value.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
