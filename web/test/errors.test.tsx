import { act, screen, waitFor } from "@testing-library/react";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus } from "../src/proto";
import { FakeGrid } from "./fake-grid";
import { renderApp } from "./render-app";

describe("errors and the connection", () => {
  it("shows a lost connection and recovers by itself", async () => {
    const grid = new FakeGrid();
    grid.add({ status: ExecutionStatus.FAILED });
    const lost = () => new ConnectError("fetch failed", Code.Unavailable);
    grid.failNext("listExecutions", lost(), lost(), lost());
    renderApp(grid, "/");

    const banner = await screen.findByRole("status");
    expect(banner.textContent).toContain("Connection lost");
    await waitFor(() => expect(screen.getAllByTestId("execution-row")).toHaveLength(1));
    await waitFor(() => expect(screen.queryByRole("status")).toBeNull());
    expect(grid.requestsOf("listExecutions").length).toBeGreaterThanOrEqual(4);
  });

  it("treats a failed fetch as a lost connection", async () => {
    const grid = new FakeGrid();
    grid.add();
    grid.failFetchNext(8);
    renderApp(grid, "/");
    expect((await screen.findByRole("status")).textContent).toContain("Connection lost");
    await waitFor(() => expect(screen.queryByRole("status")).toBeNull());
    await waitFor(() => expect(screen.getAllByTestId("execution-row")).toHaveLength(1));
  });

  it("renders a refusal as readable text, not a blank page", async () => {
    const grid = new FakeGrid();
    grid.failNext("listExecutions", new ConnectError("page_token: not a token of this listing", Code.InvalidArgument));
    renderApp(grid, "/?after=garbage");
    expect((await screen.findByRole("alert")).textContent).toBe("page_token: not a token of this listing");
  });

  it("goes to sign-in when a session ends while the console is open", async () => {
    const grid = new FakeGrid();
    const execution = grid.add({ status: ExecutionStatus.RUNNING });
    renderApp(grid, `/executions/${execution.id}`);
    await screen.findByTestId("execution-status");
    act(() => {
      grid.signedIn = false;
      grid.finish(execution.id, ExecutionStatus.COMPLETED, 0);
    });
    expect(await screen.findByLabelText("API key", {}, { timeout: 4000 })).toBeTruthy();
    expect(window.location.pathname).toBe("/sign-in");
  });

  it("shows unknown paths as not found", async () => {
    renderApp(new FakeGrid(), "/nowhere");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeTruthy();
  });
});
