import { LineSplitter } from "../src/line-splitter";

function split(chunks: Buffer[], maxLineChars?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineChars);
  chunks.forEach((chunk) => splitter.push(chunk));
  splitter.end();
  return lines;
}

describe("LineSplitter", () => {
  it("joins lines split across chunks and keeps empty lines", () => {
    expect(split([Buffer.from("first li"), Buffer.from("ne\n\nsec"), Buffer.from("ond\r\nthird")])).toEqual([
      "first line",
      "",
      "second",
      "third",
    ]);
  });

  it("keeps a multi-byte character split across chunks intact", () => {
    const bytes = Buffer.from("grüße\n");
    expect(split([bytes.subarray(0, 3), bytes.subarray(3)])).toEqual(["grüße"]);
  });

  it("splits a very long line into pieces of the maximum length, without losing characters", () => {
    const long = "x".repeat(25);
    expect(split([Buffer.from(long.slice(0, 12)), Buffer.from(long.slice(12) + "\nnext\n")], 10)).toEqual([
      "xxxxxxxxxx",
      "xxxxxxxxxx",
      "xxxxx",
      "next",
    ]);
  });

  it("does not cut a surrogate pair in half", () => {
    const lines = split([Buffer.from("abcdefghi😀tail\n")], 10);
    expect(lines).toEqual(["abcdefghi", "😀tail"]);
  });

  it("emits nothing for a stream that ends right after a newline", () => {
    expect(split([Buffer.from("only\n")])).toEqual(["only"]);
  });
});
