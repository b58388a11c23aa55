import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { AuditAction, ExecutionStatus } from "../src/proto";
import { FakeGrid } from "./fake-grid";
import { currentUrl, renderApp } from "./render-app";

function rows() {
  return screen.queryAllByTestId("audit-row");
}

/** A failed original retried with a reason, a cancel elsewhere, and an automatic retry nobody asked for. */
function history(grid: FakeGrid) {
  const original = grid.add({ status: ExecutionStatus.FAILED });
  const retry = grid.add({ status: ExecutionStatus.COMPLETED, retryOf: original.id, rootId: original.id, attempt: 2 });
  const retried = grid.record(AuditAction.RETRY, original.id, { reason: "disk replaced (INC-7)", outcome: retry.id });
  const other = grid.add({ status: ExecutionStatus.CANCELLED });
  const cancelled = grid.record(AuditAction.CANCEL, other.id, { actor: "sess_" + "5".repeat(32), outcome: "cancelled" });
  const automatic = grid.record(AuditAction.AUTOMATIC_RETRY, retry.id, { actor: "", reason: "runner lost", outcome: "exec_" + "a".repeat(32) });
  return { original, retry, retried, cancelled, automatic };
}

describe("audit page", () => {
  it("lists the account's entries newest first: action, execution, who, reason and outcome", async () => {
    const grid = new FakeGrid();
    const { original, retry, retried, cancelled, automatic } = history(grid);
    renderApp(grid, "/audit");

    await waitFor(() => expect(rows()).toHaveLength(3));
    expect(rows().map((row) => row.dataset.entryId)).toEqual([automatic.id, cancelled.id, retried.id]);
    expect(rows().map((row) => row.dataset.action)).toEqual(["automatic_retry", "cancel", "retry"]);
    const [auto, cancel, manual] = rows() as [HTMLElement, HTMLElement, HTMLElement];
    expect(within(auto).getByText("rgrid (automatic)")).toBeTruthy();
    expect(within(cancel).getByText("sess_55555555…").getAttribute("title")).toContain("sess_" + "5".repeat(32));
    expect(within(cancel).getByText("cancelled")).toBeTruthy();
    expect(within(manual).getByText("disk replaced (INC-7)")).toBeTruthy();
    expect(within(manual).getByRole("link", { name: original.id }).getAttribute("href")).toBe(`/executions/${original.id}`);
    expect(within(manual).getByRole("link", { name: /^→ exec_/ }).getAttribute("href")).toBe(`/executions/${retry.id}`);
    expect(grid.requestsOf("listAuditEntries")[0]).toMatchObject({ action: AuditAction.UNSPECIFIED, executionId: "", pageSize: 50, pageToken: "" });
  });

  it("filters by action on the server, keeps the filter in the URL, and pages with the server's token", async () => {
    const grid = new FakeGrid();
    history(grid);
    const many = grid.add({ status: ExecutionStatus.FAILED });
    for (let n = 0; n < 55; n++) grid.record(AuditAction.RETRY, many.id, { outcome: `exec_${n.toString(16).padStart(32, "0")}` });
    renderApp(grid, "/audit");
    await waitFor(() => expect(rows()).toHaveLength(50));

    fireEvent.change(screen.getByLabelText("Action"), { target: { value: "cancel" } });
    await waitFor(() => expect(rows()).toHaveLength(1));
    expect(currentUrl()).toBe("/audit?action=cancel");
    expect(grid.requestsOf("listAuditEntries").at(-1)).toMatchObject({ action: AuditAction.CANCEL });

    fireEvent.change(screen.getByLabelText("Action"), { target: { value: "retry" } });
    await waitFor(() => expect(rows()).toHaveLength(50));
    expect(rows().every((row) => row.dataset.action === "retry")).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(rows()).toHaveLength(6));
    expect(grid.requestsOf("listAuditEntries").at(-1)?.pageToken).toMatch(/^after:audit_/);
    expect(new URLSearchParams(window.location.search).get("action")).toBe("retry");
    expect(screen.getByText("Page 2")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Clear filter" }));
    await waitFor(() => expect(currentUrl()).toBe("/audit"));
  });

  it("says so when nothing was recorded", async () => {
    renderApp(new FakeGrid(), "/audit");
    expect(await screen.findByText(/Nothing recorded yet/)).toBeTruthy();
  });
});

describe("execution history", () => {
  it("lists the entries of the whole lineage, oldest first, and no other", async () => {
    const grid = new FakeGrid();
    const { retry, retried, automatic } = history(grid);
    renderApp(grid, `/executions/${retry.id}`);

    const table = await screen.findByTestId("history");
    await waitFor(() => expect(within(table).getAllByTestId("audit-row")).toHaveLength(2));
    expect(within(table).getAllByTestId("audit-row").map((row) => row.dataset.entryId)).toEqual([retried.id, automatic.id]);
    expect(grid.requestsOf("listAuditEntries")[0]).toMatchObject({ executionId: retry.id });
  });

  it("says so when nothing was asked of the lineage", async () => {
    const grid = new FakeGrid();
    const execution = grid.add();
    renderApp(grid, `/executions/${execution.id}`);
    expect((await screen.findByTestId("history-empty")).textContent).toContain("no retries or cancels");
  });
});
