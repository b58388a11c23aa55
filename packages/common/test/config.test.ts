import { ConfigError, EnvReader } from "../src/config";

test("every problem is reported at once", () => {
  const reader = new EnvReader({ PORT: "70000", MODE: "fast", URL: "ftp://x" });
  reader.port("PORT", 1);
  reader.secret("TOKEN");
  reader.oneOf("MODE", ["fs", "s3"], "fs");
  reader.url("URL");
  let caught: unknown;
  try {
    reader.finish();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as ConfigError).problems).toEqual([
    'PORT must be an integer from 0 to 65535, got "70000"',
    "TOKEN is required",
    'MODE must be one of fs, s3, got "fast"',
    'URL must be an http or https URL, got "ftp://x"',
  ]);
});

test("defaults apply only when a variable is unset or empty, and secrets have none", () => {
  const reader = new EnvReader({ PORT: "", TOKEN: "short" });
  expect(reader.port("PORT", 7400)).toBe(7400);
  expect(reader.string("NAME", "fallback")).toBe("fallback");
  reader.secret("TOKEN");
  expect(() => reader.finish()).toThrow("TOKEN must be at least 16 characters");
});

test("secret lists are split on commas", () => {
  const reader = new EnvReader({ TOKENS: "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb" });
  expect(reader.secretList("TOKENS")).toEqual(["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
  reader.finish();
});
