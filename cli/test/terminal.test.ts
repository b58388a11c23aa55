import { createProcessOutput } from "../src/terminal";

function streams(stderrIsTerminal: boolean, columns?: number) {
  const written: Array<["out" | "err", string]> = [];
  const output = createProcessOutput({
    stdout: { write: (text: string) => written.push(["out", text]) },
    stderr: { write: (text: string) => written.push(["err", text]) },
    stderrIsTerminal,
    columns: () => columns,
  });
  return { output, written };
}

describe("the process output", () => {
  it("has no status line when stderr is not a terminal", () => {
    const { output, written } = streams(false);

    output.stdout("result");
    output.stderr("note");

    expect(output.status).toBeUndefined();
    expect(written).toEqual([
      ["out", "result\n"],
      ["err", "note\n"],
    ]);
  });

  it("redraws the status line in place and erases it before any other line", () => {
    const { output, written } = streams(true, 80);

    output.status?.show("Downloading outputs: 0/2 files");
    output.status?.show("Downloading outputs: 1/2 files");
    output.stdout("Downloaded a.txt (1 B)");
    output.stdout("Downloaded b.txt (1 B)");
    output.status?.show("Downloading outputs: 2/2 files");
    output.status?.clear();
    output.status?.clear();

    expect(written).toEqual([
      ["err", "\r\u001b[KDownloading outputs: 0/2 files"],
      ["err", "\r\u001b[KDownloading outputs: 1/2 files"],
      ["err", "\r\u001b[K"],
      ["out", "Downloaded a.txt (1 B)\n"],
      ["out", "Downloaded b.txt (1 B)\n"],
      ["err", "\r\u001b[KDownloading outputs: 2/2 files"],
      ["err", "\r\u001b[K"],
    ]);
  });

  it("cuts a status line that would wrap on a narrow terminal", () => {
    const { output, written } = streams(true, 12);

    output.status?.show("Downloading outputs: 0/2 files");

    expect(written).toEqual([["err", "\r\u001b[KDownloadin…"]]);
  });
});
