import { screen, waitFor, within } from "@testing-library/react";
import { DiffChange, ExecutionStatus, FailureKind, LogDiff_Result, LogEntry_Stream } from "../src/proto";
import { FakeGrid } from "./fake-grid";
import { renderApp } from "./render-app";

function group(name: string): HTMLElement {
  const found = screen.getAllByTestId("diff-group").find((element) => element.dataset.group === name);
  if (!found) throw new Error(`no ${name} group`);
  return found;
}

function groups(): string[] {
  return screen.queryAllByTestId("diff-group").map((element) => element.dataset.group ?? "");
}

function sides(name: string): [string, string] {
  const side = (which: string) => group(name).querySelector(`dd[data-side="${which}"]`)?.textContent ?? "";
  return [side("a"), side("b")];
}

describe("compare page", () => {
  it("shows who is compared, then only what differs, grouped, and names what is the same", async () => {
    const grid = new FakeGrid();
    const a = grid.add({ status: ExecutionStatus.FAILED, exitCode: 1, failureKind: FailureKind.SCRIPT, errorMessage: "KeyError: 'rate'" });
    const b = grid.add({ status: ExecutionStatus.COMPLETED, exitCode: 0, retryOf: a.id, rootId: a.id, attempt: 2, runtime: "python:3.12" });
    const file = (size: bigint, digit: string) => ({ name: "rates.csv", sizeBytes: size, sha256: digit.repeat(64) });
    grid.diffParts = {
      inputs: [
        { name: "config.json", change: DiffChange.SAME, a: file(10n, "1"), b: file(10n, "1") },
        { name: "rates.csv", change: DiffChange.CHANGED, a: file(2048n, "2"), b: file(4096n, "3") },
        { name: "extra.txt", change: DiffChange.ADDED, b: file(5n, "4") },
      ],
      env: [
        { key: "API_TOKEN", change: DiffChange.CHANGED },
        { key: "MODE", change: DiffChange.SAME },
      ],
      runtime: DiffChange.CHANGED,
      outcome: DiffChange.CHANGED,
      logs: {
        result: LogDiff_Result.DIVERGED,
        line: 3n,
        a: { sequence: 3n, stream: LogEntry_Stream.STDERR, line: "KeyError: 'rate'" },
        b: { sequence: 3n, stream: LogEntry_Stream.STDOUT, line: "total: 587.38 EUR" },
      },
    };
    renderApp(grid, `/compare/${a.id}/${b.id}`);

    const sideA = await screen.findByTestId("compare-a");
    expect(within(sideA).getByRole("link", { name: a.id }).getAttribute("href")).toBe(`/executions/${a.id}`);
    expect(sideA.textContent).toContain("attempt 1");
    expect(within(sideA).getByText("failed")).toBeTruthy();
    expect(screen.getByTestId("compare-b").textContent).toContain("attempt 2 of exec_");
    expect(grid.requestsOf("diffExecutions")[0]).toMatchObject({ executionA: a.id, executionB: b.id, showValues: false });

    expect(groups()).toEqual(["inputs", "env", "runtime", "outcome", "logs"]);
    expect(group("inputs").querySelector("h3")?.textContent).toBe("Inputs 1 changed, 1 added, 1 same");
    expect([...group("inputs").querySelectorAll("li")].map((item) => item.textContent)).toEqual([
      "changedrates.csv2.0 KiB, sha256 222222222222 → 4.0 KiB, sha256 333333333333",
      "addedextra.txt5 B, sha256 444444444444",
    ]);
    expect([...group("env").querySelectorAll("li")].map((item) => item.textContent)).toEqual(["changedAPI_TOKEN"]);
    expect(group("runtime").textContent).toContain("python → python:3.12");
    expect(sides("outcome")).toEqual(["failed, exit code 1, script failure, 2.0 sKeyError: 'rate'", "completed, exit code 0, 2.0 s"]);
    expect(group("logs").querySelector("h3")?.textContent).toBe("Logs differ from line 3");
    expect(sides("logs")).toEqual(["stderrKeyError: 'rate'", "stdouttotal: 587.38 EUR"]);
    expect(screen.getByTestId("diff-same").textContent).toBe("Same: Script, Args, Timeout, Network, Runner, Sandbox warnings");
  });

  it("says why the logs were not compared", async () => {
    const grid = new FakeGrid();
    const a = grid.add({ status: ExecutionStatus.FAILED });
    const b = grid.add({ status: ExecutionStatus.RUNNING });
    grid.diffParts = { logs: { result: LogDiff_Result.NOT_COMPARED, reason: `${b.id} has not finished` } };
    renderApp(grid, `/compare/${a.id}/${b.id}`);
    await waitFor(() => expect(groups()).toEqual(["logs"]));
    expect(group("logs").textContent).toBe(`Logs not compared (${b.id} has not finished)`);
  });

  it("renders a refusal as the server's sentence", async () => {
    const grid = new FakeGrid();
    const a = grid.add();
    renderApp(grid, `/compare/${a.id}/exec_${"0".repeat(32)}`);
    expect((await screen.findByRole("alert")).textContent).toBe(`execution exec_${"0".repeat(32)} not found`);
  });
});
