import { Code, ConnectError } from "@connectrpc/connect";
import { MAX_ERROR_MESSAGE_CHARS, boundErrorMessage, boundMessage, quoteInput } from "../src/errors";

describe("boundMessage", () => {
  test("leaves a short message as it is", () => {
    expect(boundMessage("invalid execution_id: must be exec_ followed by 32 lowercase hex characters")).toBe(
      "invalid execution_id: must be exec_ followed by 32 lowercase hex characters",
    );
  });

  test("cuts a long message, saying how much was cut", () => {
    const bounded = boundMessage(`unknown key ${"k".repeat(70_000)}`);
    expect(bounded.startsWith(`unknown key ${"k".repeat(MAX_ERROR_MESSAGE_CHARS - 12)}…`)).toBe(true);
    expect(bounded).toMatch(/… \(69712 more characters\)$/);
    expect(bounded.length).toBeLessThan(MAX_ERROR_MESSAGE_CHARS + 30);
  });

  test("never splits a surrogate pair, and replaces lone surrogates", () => {
    const emoji = "\u{1F600}"; // two UTF-16 code units
    const cut = boundMessage(`${"a".repeat(MAX_ERROR_MESSAGE_CHARS - 1)}${emoji}${"b".repeat(10)}`);
    expect(cut.startsWith(`${"a".repeat(MAX_ERROR_MESSAGE_CHARS - 1)}…`)).toBe(true);
    expect(boundMessage("id exec_\uD800 is bad")).toBe("id exec_\uFFFD is bad");
    // Lone surrogates are what encodeURIComponent (grpc-message) cannot encode.
    expect(() => encodeURIComponent(boundMessage(`x\uDC00${"y".repeat(1000)}`))).not.toThrow();
  });
});

test("quoteInput quotes a bounded prefix of a client's value", () => {
  expect(quoteInput("rgrid.v1.Example")).toBe('"rgrid.v1.Example"');
  expect(quoteInput("s".repeat(1_048_576))).toBe(`"${"s".repeat(64)}"… (1048576 characters)`);
});

test("boundErrorMessage keeps the code, metadata and cause, and bounds only a long message", () => {
  const cause = new Error("the cause");
  const short = new ConnectError("short", Code.NotFound);
  expect(boundErrorMessage(short)).toBe(short);
  const long = new ConnectError("m".repeat(10_000), Code.InvalidArgument, { "x-trace": "t1" }, undefined, cause);
  const bounded = boundErrorMessage(long);
  expect(bounded.code).toBe(Code.InvalidArgument);
  expect(bounded.metadata.get("x-trace")).toBe("t1");
  expect(bounded.cause).toBe(cause);
  expect(bounded.rawMessage.length).toBeLessThan(MAX_ERROR_MESSAGE_CHARS + 30);
});
