import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { ExecutionStatus } from "../src/proto";
import { FakeGrid, makeId } from "./fake-grid";
import { currentUrl, renderApp } from "./render-app";

function rows() {
  return screen.queryAllByTestId("execution-row");
}

describe("executions list", () => {
  it("shows one row per execution, newest first, with status, script, attempt and batch", async () => {
    const grid = new FakeGrid();
    const batchId = makeId("batch");
    const first = grid.add({ status: ExecutionStatus.COMPLETED, script: { name: "etl.py" } });
    const second = grid.add({ status: ExecutionStatus.FAILED, exitCode: 3, batchId });
    renderApp(grid, "/");

    const table = await screen.findByTestId("executions-table");
    await waitFor(() => expect(rows()).toHaveLength(2));
    expect(rows().map((row) => row.dataset.executionId)).toEqual([second.id, first.id]);
    expect(rows().map((row) => row.dataset.status)).toEqual(["failed", "completed"]);
    const failedRow = within(table).getAllByTestId("execution-row")[0]!;
    expect(within(failedRow).getByRole("link", { name: second.id }).getAttribute("href")).toBe(`/executions/${second.id}`);
    expect(within(failedRow).getByText("failed")).toBeTruthy();
    expect(within(failedRow).getByText("3")).toBeTruthy();
    expect(within(failedRow).getByRole("link", { name: /^batch_/ }).getAttribute("href")).toBe(`/batches/${batchId}`);
    expect(within(rows()[1]!).getByText("etl.py")).toBeTruthy();
    expect(grid.requestsOf("listExecutions")[0]).toMatchObject({ pageSize: 50, pageToken: "", statuses: [] });
  });

  it("sends the filters to the server and keeps them in the URL", async () => {
    const grid = new FakeGrid();
    const batchId = makeId("batch");
    grid.add({ status: ExecutionStatus.FAILED, script: { name: "train_model.py" }, batchId });
    grid.add({ status: ExecutionStatus.COMPLETED, script: { name: "train_model.py" } });
    grid.add({ status: ExecutionStatus.FAILED, script: { name: "report.py" } });
    renderApp(grid, "/");
    await waitFor(() => expect(rows()).toHaveLength(3));

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "failed" } });
    await waitFor(() => expect(rows()).toHaveLength(2));
    expect(currentUrl()).toBe("/?status=failed");
    expect(grid.requestsOf("listExecutions").at(-1)).toMatchObject({ statuses: [ExecutionStatus.FAILED] });

    fireEvent.change(screen.getByLabelText("Script"), { target: { value: "train" } });
    await waitFor(() => expect(rows()).toHaveLength(1));
    expect(new URLSearchParams(window.location.search).get("script")).toBe("train");
    expect(grid.requestsOf("listExecutions").at(-1)).toMatchObject({ statuses: [ExecutionStatus.FAILED], scriptName: "train" });

    fireEvent.click(screen.getByLabelText("Unresolved only"));
    await waitFor(() => expect(grid.requestsOf("listExecutions").at(-1)).toMatchObject({ unresolved: true }));
    expect(new URLSearchParams(window.location.search).get("unresolved")).toBe("1");

    fireEvent.change(screen.getByLabelText("Batch"), { target: { value: batchId } });
    await waitFor(() => expect(grid.requestsOf("listExecutions").at(-1)).toMatchObject({ batchId }));
    expect(new URLSearchParams(window.location.search).get("batch")).toBe(batchId);
    await waitFor(() => expect(rows()).toHaveLength(1));
  });

  it("reads the filters from a shared link", async () => {
    const grid = new FakeGrid();
    grid.add({ status: ExecutionStatus.TIMED_OUT, script: { name: "slow.py" } });
    grid.add({ status: ExecutionStatus.COMPLETED, script: { name: "slow.py" } });
    renderApp(grid, "/?status=timed_out&script=slow&unresolved=1");

    await waitFor(() => expect(rows()).toHaveLength(1));
    expect(rows()[0]!.dataset.status).toBe("timed_out");
    expect(grid.requestsOf("listExecutions")[0]).toMatchObject({
      statuses: [ExecutionStatus.TIMED_OUT],
      scriptName: "slow",
      unresolved: true,
    });
    expect((screen.getByLabelText("Status") as HTMLSelectElement).value).toBe("timed_out");
    expect((screen.getByLabelText("Script") as HTMLInputElement).value).toBe("slow");
    expect((screen.getByLabelText("Unresolved only") as HTMLInputElement).checked).toBe(true);
  });

  it("pages with keyset tokens kept in the URL", async () => {
    const grid = new FakeGrid();
    const all = Array.from({ length: 120 }, () => grid.add({ status: ExecutionStatus.COMPLETED }));
    const newestFirst = [...all].reverse();
    renderApp(grid, "/");
    await waitFor(() => expect(rows()).toHaveLength(50));
    expect(rows()[0]!.dataset.executionId).toBe(newestFirst[0]!.id);
    expect((screen.getByRole("button", { name: "Previous" }) as HTMLButtonElement).disabled).toBe(true);

    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(rows()[0]!.dataset.executionId).toBe(newestFirst[50]!.id));
    expect(new URLSearchParams(window.location.search).get("after")).toBe(`after:${newestFirst[49]!.id}`);

    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(rows()).toHaveLength(20));
    expect(rows()[0]!.dataset.executionId).toBe(newestFirst[100]!.id);
    expect((screen.getByRole("button", { name: "Next" }) as HTMLButtonElement).disabled).toBe(true);

    fireEvent.click(screen.getByRole("button", { name: "Previous" }));
    await waitFor(() => expect(rows()[0]!.dataset.executionId).toBe(newestFirst[50]!.id));
    fireEvent.click(screen.getByRole("button", { name: "Previous" }));
    await waitFor(() => expect(rows()[0]!.dataset.executionId).toBe(newestFirst[0]!.id));
    expect(currentUrl()).toBe("/");
  });

  it("says so when nothing matches", async () => {
    const grid = new FakeGrid();
    renderApp(grid, "/");
    expect(await screen.findByText(/No executions yet/)).toBeTruthy();
  });

  it("shows new executions without a reload", async () => {
    jest.useFakeTimers({ doNotFake: ["queueMicrotask", "nextTick", "setImmediate"] });
    try {
      const grid = new FakeGrid();
      grid.add();
      renderApp(grid, "/");
      await waitFor(() => expect(rows()).toHaveLength(1));
      grid.add({ status: ExecutionStatus.RUNNING });
      await act(() => jest.advanceTimersByTimeAsync(2500));
      await waitFor(() => expect(rows()).toHaveLength(2));
      expect(rows()[0]!.dataset.status).toBe("running");
    } finally {
      jest.useRealTimers();
    }
  });
});
