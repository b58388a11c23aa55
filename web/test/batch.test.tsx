import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { ExecutionStatus } from "../src/proto";
import { FakeGrid, makeId } from "./fake-grid";
import { renderApp } from "./render-app";

describe("batch view", () => {
  it("counts the batch's executions by status and lists its members", async () => {
    const grid = new FakeGrid();
    const batchId = makeId("batch");
    grid.add({ batchId, status: ExecutionStatus.COMPLETED });
    grid.add({ batchId, status: ExecutionStatus.COMPLETED });
    grid.add({ batchId, status: ExecutionStatus.FAILED });
    grid.add({ batchId, status: ExecutionStatus.TIMED_OUT });
    grid.add({ status: ExecutionStatus.FAILED }); // not in the batch
    renderApp(grid, `/batches/${batchId}`);

    const counts = await screen.findByTestId("batch-counts");
    const items = within(counts).getAllByRole("listitem");
    expect(items.map((item) => [item.dataset.status, item.dataset.count])).toEqual([
      ["completed", "2"],
      ["failed", "1"],
      ["timed_out", "1"],
    ]);
    await waitFor(() => expect(screen.getAllByTestId("execution-row")).toHaveLength(4));
    expect(grid.requestsOf("listExecutions")[0]).toMatchObject({ batchId, pageSize: 50 });
  });

  it("retries the failed executions and shows what became of each", async () => {
    const grid = new FakeGrid();
    const batchId = makeId("batch");
    grid.add({ batchId, status: ExecutionStatus.COMPLETED });
    const failed = grid.add({ batchId, status: ExecutionStatus.FAILED });
    const timedOut = grid.add({ batchId, status: ExecutionStatus.TIMED_OUT });
    const alreadyRetried = grid.add({ batchId, status: ExecutionStatus.FAILED });
    const earlierRetry = grid.add({ batchId, status: ExecutionStatus.RUNNING, retryOf: alreadyRetried.id, rootId: alreadyRetried.id, attempt: 2 });
    renderApp(grid, `/batches/${batchId}`);

    await screen.findByTestId("batch-counts");
    fireEvent.click(screen.getByRole("button", { name: "Retry failed…" }));
    const dialog = screen.getByRole("dialog", { name: "Retry failed executions" });
    const confirm = within(dialog).getByRole("button", { name: "Retry failed" });
    fireEvent.click(confirm);
    fireEvent.click(confirm);

    const result = await within(dialog).findByTestId("batch-retry-result");
    const rows = within(result).getAllByRole("row").slice(1);
    const retriedIds = grid.executions.filter((e) => e.retryOf === failed.id || e.retryOf === timedOut.id).map((e) => e.id);
    expect(rows.map((row) => [row.dataset.originalId, row.dataset.retryId])).toEqual([
      [failed.id, retriedIds[0]],
      [timedOut.id, retriedIds[1]],
      [alreadyRetried.id, ""],
    ]);
    expect(within(rows[2]!).getByText(`skipped: already retried as ${earlierRetry.id}`)).toBeTruthy();
    expect(within(dialog).getByTestId("batch-retry-summary").textContent).toBe("Retried 2, skipped 1.");
    const requests = grid.requestsOf("retryBatch");
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ batchId, failedOnly: true });
    expect(typeof requests[0]!.requestId).toBe("string");
    expect((requests[0]!.requestId as string).length).toBeGreaterThan(0);
  });

  it("shows a missing batch as the server's sentence", async () => {
    const grid = new FakeGrid();
    renderApp(grid, "/batches/batch_00000000000000000000000000000000");
    expect((await screen.findAllByRole("alert"))[0]!.textContent).toBe("batch batch_00000000000000000000000000000000 not found");
  });
});
