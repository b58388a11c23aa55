// Turns a byte stream into log lines: complete lines as they arrive, very long lines in pieces,
// a last line without newline at the end, and invalid UTF-8 replaced rather than rejected.

import { StringDecoder } from "node:string_decoder";

/** Long enough for any sensible line; bounded so one runaway line cannot exhaust memory. */
export const MAX_LINE_CHARS = 16 * 1024;

export class LineSplitter {
  // StringDecoder keeps multi-byte characters split across chunks intact and turns invalid
  // sequences into U+FFFD.
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLineChars = MAX_LINE_CHARS,
  ) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    this.drainCompleteLines();
  }

  /** Emits whatever is left, once the stream has ended. */
  end(): void {
    this.pending += this.decoder.end();
    this.drainCompleteLines();
    if (this.pending !== "") {
      this.emitLine(this.pending);
      this.pending = "";
    }
  }

  private drainCompleteLines(): void {
    let start = 0;
    for (let newline = this.pending.indexOf("\n"); newline >= 0; newline = this.pending.indexOf("\n", start)) {
      this.emitLine(this.pending.slice(start, newline));
      start = newline + 1;
    }
    this.pending = this.pending.slice(start);
    while (this.pending.length > this.maxLineChars) {
      const cut = this.cutPoint(this.pending);
      this.emit(this.pending.slice(0, cut));
      this.pending = this.pending.slice(cut);
    }
  }

  private emitLine(line: string): void {
    // Windows-style line endings would otherwise leave a stray carriage return on every line.
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    let rest = text;
    while (rest.length > this.maxLineChars) {
      const cut = this.cutPoint(rest);
      this.emit(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    this.emit(rest);
  }

  /** Never cuts between the two halves of a surrogate pair. */
  private cutPoint(text: string): number {
    const code = text.charCodeAt(this.maxLineChars - 1);
    return code >= 0xd800 && code <= 0xdbff ? this.maxLineChars - 1 : this.maxLineChars;
  }
}
