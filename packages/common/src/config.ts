// Typed configuration from the environment. Each process parses its environment once, in
// main.ts, and hears about every problem at once instead of one per restart.

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const value = this.env[name];
    return value === undefined || value === "" ? fallback : value;
  }

  optionalString(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === "" ? undefined : value;
  }

  /** Secrets never have a default: a missing secret is a configuration error. */
  secret(name: string, minLength = 16): string {
    const value = this.env[name];
    if (value === undefined || value === "") {
      this.problems.push(`${name} is required`);
      return "";
    }
    if (value.length < minLength) {
      this.problems.push(`${name} must be at least ${minLength} characters`);
    }
    return value;
  }

  /** A comma-separated list of secrets, at least one. */
  secretList(name: string, minLength = 16): string[] {
    const values = this.entries(name);
    if (values.length === 0) {
      this.problems.push(`${name} is required (comma-separated)`);
    }
    for (const value of values) {
      if (value.length < minLength) {
        this.problems.push(`each entry of ${name} must be at least ${minLength} characters`);
        break;
      }
    }
    return values;
  }

  /** A comma-separated list, empty when unset; each entry checked by `problemOf`. */
  list(name: string, problemOf: (entry: string) => string | undefined = () => undefined): string[] {
    const values = this.entries(name);
    for (const value of values) {
      const problem = problemOf(value);
      if (problem !== undefined) {
        this.problems.push(`${name}: ${problem}`);
      }
    }
    return values;
  }

  /** The non-empty, trimmed entries of a comma-separated variable. */
  private entries(name: string): string[] {
    return (this.env[name] ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (raw === undefined || raw === "") {
      return fallback;
    }
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  }

  port(name: string, fallback: number): number {
    return this.integer(name, fallback, 0, 65535);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.env[name];
    if (raw === undefined || raw === "") {
      return fallback;
    }
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  }

  url(name: string, fallback?: string): string {
    const raw = this.optionalString(name) ?? fallback;
    if (raw === undefined) {
      this.problems.push(`${name} is required`);
      return "";
    }
    try {
      const parsed = new URL(raw);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        this.problems.push(`${name} must be an http or https URL, got "${raw}"`);
      }
    } catch {
      this.problems.push(`${name} must be a URL, got "${raw}"`);
    }
    return raw.replace(/\/+$/, "");
  }

  /** Records a problem found by a cross-field check of the caller's own. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws a ConfigError listing every problem found so far. */
  finish(): void {
    if (this.problems.length > 0) {
      throw new ConfigError(this.problems);
    }
  }
}
