// The process's real output: lines to stdout and stderr, and on a terminal a status line that is
// redrawn in place. Every ordinary line first erases the status line, so the two never mix.
import type { Output } from "./context";

/** What the output needs of a stream: node's process.stdout and process.stderr fit. */
export interface TextStream {
  write(text: string): unknown;
}

export interface TerminalStreams {
  stdout: TextStream;
  stderr: TextStream;
  /** Whether stderr is a terminal; only then is there a status line. */
  stderrIsTerminal: boolean;
  /** The terminal's width now (it can change while running), when known. */
  columns: () => number | undefined;
}

// Carriage return, then "erase to end of line": the cursor stays on the status line's row.
const ERASE_LINE = "\r\u001b[K";

export function createProcessOutput(streams: TerminalStreams): Output {
  const { stdout, stderr } = streams;
  let statusShown = false;
  const erase = (): void => {
    if (statusShown) {
      stderr.write(ERASE_LINE);
      statusShown = false;
    }
  };
  const output: Output = {
    stdout: (line) => {
      erase();
      stdout.write(`${line}\n`);
    },
    stderr: (line) => {
      erase();
      stderr.write(`${line}\n`);
    },
  };
  if (streams.stderrIsTerminal) {
    output.status = {
      show: (text) => {
        // A line wider than the terminal wraps, and "\r" would then redraw only its last row.
        const width = streams.columns();
        const fitted = width !== undefined && width > 1 && text.length >= width ? `${text.slice(0, width - 2)}…` : text;
        stderr.write(`${ERASE_LINE}${fitted}`);
        statusShown = true;
      },
      clear: erase,
    };
  }
  return output;
}
