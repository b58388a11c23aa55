import { EnvReader } from "../src/config";
import { createJsonLogger } from "../src/json-logger";
import { readLogFormat } from "../src/log-format";
import { createLogger } from "../src/logger";

// Both log formats behind the one Logger interface: what a collector reads from the JSON lines,
// and that neither format lets a message or a value break an event over several lines.

function jsonLines(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (chunk) => lines.push(...chunk.split("\n").filter((line) => line !== "")) };
}

describe("the JSON format", () => {
  test("writes one object per event with level, time, component, message and fields", () => {
    const out = jsonLines();
    const logger = createJsonLogger("storage", out);
    logger.info("listening", { url: "http://127.0.0.1:7401", open: 3 });
    logger.warn("slow", { ms: 12.5 });
    logger.error("failed");

    expect(out.lines).toHaveLength(3);
    const [info, warn, error] = out.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(info).toMatchObject({ level: "info", component: "storage", msg: "listening", url: "http://127.0.0.1:7401", open: 3 });
    expect(new Date(info?.["time"] as string).toISOString()).toBe(info?.["time"]);
    expect(warn).toMatchObject({ level: "warn", msg: "slow", ms: 12.5 });
    expect(error).toMatchObject({ level: "error", msg: "failed" });
  });

  test("a child names its component after its parent's, once per line", () => {
    const out = jsonLines();
    createJsonLogger("execution", out).child("janitor").child("pass").info("done");
    expect(JSON.parse(out.lines[0] as string)).toMatchObject({ component: "execution/janitor/pass", msg: "done" });
    expect(out.lines[0]?.match(/"component"/g)).toHaveLength(1);
  });

  test("errors keep their message, stack and cause", () => {
    const out = jsonLines();
    createJsonLogger("execution", out).error("internal error", { error: new Error("disk full", { cause: new Error("ENOSPC") }) });
    const line = JSON.parse(out.lines[0] as string) as { error: { type: string; message: string; stack: string } };
    expect(line.error.type).toBe("Error");
    expect(line.error.message).toContain("disk full");
    expect(line.error.stack).toContain("caused by: Error: ENOSPC");
  });

  test("a field named like one of the line's own keys is renamed rather than written twice", () => {
    const out = jsonLines();
    createJsonLogger("runner", out).info("real message", { msg: "forged", level: "error", component: "other", time: 0 });
    const raw = out.lines[0] as string;
    for (const key of ["msg", "level", "component", "time"]) {
      expect(raw.match(new RegExp(`"${key}"`, "g"))).toHaveLength(1);
    }
    expect(JSON.parse(raw)).toMatchObject({
      msg: "real message",
      level: "info",
      component: "runner",
      field_msg: "forged",
      field_level: "error",
      field_component: "other",
      field_time: 0,
    });
  });

  test("a message with line breaks and format directives stays one line, as written", () => {
    const out = jsonLines();
    createJsonLogger("storage", out).info("%s\nforged line\u2028", { value: "a\r\nb" });
    expect(out.lines).toHaveLength(1);
    expect(JSON.parse(out.lines[0] as string)).toMatchObject({ msg: "%s\nforged line\u2028", value: "a\r\nb" });
  });
});

describe("the readable format", () => {
  test("keeps every event on one line whatever its message or values hold", () => {
    const lines: string[] = [];
    const logger = createLogger("storage", (line) => lines.push(line));
    logger.info("first\n2026-01-01T00:00:00.000Z INFO  storage: forged\u2028\u0085\u001b[2J", {
      value: "x\r\n2026-01-01T00:00:00.000Z ERROR storage: forged",
      list: ["a\u2028b"],
      error: new Error("boom\nline two"),
      size: 12n,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\n\r\u2028\u0085\u001b]/);
    expect(lines[0]).toContain("first\\n2026-01-01T00:00:00.000Z INFO  storage: forged\\u2028\\u0085\\u001b[2J");
    expect(lines[0]).toContain('value="x\\r\\n2026-01-01T00:00:00.000Z ERROR storage: forged"');
    expect(lines[0]).toContain('list=["a\\u2028b"]');
    expect(lines[0]).toContain("size=12");
  });
});

describe("RGRID_LOG_FORMAT", () => {
  test("is text unless set to json", () => {
    expect(readLogFormat(new EnvReader({}))).toBe("text");
    expect(readLogFormat(new EnvReader({ RGRID_LOG_FORMAT: "" }))).toBe("text");
    expect(readLogFormat(new EnvReader({ RGRID_LOG_FORMAT: "json" }))).toBe("json");
    expect(readLogFormat(new EnvReader({ RGRID_LOG_FORMAT: "text" }))).toBe("text");
  });

  test("names the variable and the choices when it holds anything else", () => {
    const reader = new EnvReader({ RGRID_LOG_FORMAT: "JSON" });
    readLogFormat(reader);
    expect(() => reader.finish()).toThrow('RGRID_LOG_FORMAT must be one of text, json, got "JSON"');
  });
});
