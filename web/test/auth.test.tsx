import { fireEvent, screen, waitFor } from "@testing-library/react";
import { ExecutionStatus } from "../src/proto";
import { ACCOUNT_NAME, FakeGrid, VALID_API_KEY } from "./fake-grid";
import { currentUrl, renderApp } from "./render-app";

describe("sessions", () => {
  it("sends a caller without a session to the sign-in page", async () => {
    const grid = new FakeGrid();
    grid.signedIn = false;
    renderApp(grid, "/?status=failed");
    expect(await screen.findByLabelText("API key")).toBeTruthy();
    expect(currentUrl()).toBe("/sign-in");
  });

  it("signs in with an API key and shows the account", async () => {
    const grid = new FakeGrid();
    grid.signedIn = false;
    grid.add({ status: ExecutionStatus.COMPLETED });
    renderApp(grid, "/sign-in");

    const key = await screen.findByLabelText("API key");
    expect(key.getAttribute("type")).toBe("password");
    fireEvent.change(key, { target: { value: "rgk_wrong" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toBe("unknown API key");
    expect(currentUrl()).toBe("/sign-in");

    fireEvent.change(key, { target: { value: VALID_API_KEY } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(currentUrl()).toBe("/"));
    await waitFor(() => expect(screen.getByTestId("account-name").textContent).toBe(ACCOUNT_NAME));
    await waitFor(() => expect(screen.getAllByTestId("execution-row")).toHaveLength(1));
    expect(grid.requestsOf("createSession").at(-1)).toMatchObject({ credential: { case: "apiKey", value: VALID_API_KEY } });
    expect(window.localStorage.length + window.sessionStorage.length).toBe(0);
  });

  it("signs in with a sign-in link, taking the token out of the address bar first", async () => {
    const grid = new FakeGrid();
    grid.signedIn = false;
    grid.signInTokens.add("tok_single_use");
    let urlAtCall = "";
    grid.onRequest = (method) => {
      if (method === "createSession") urlAtCall = currentUrl();
    };
    renderApp(grid, "/sign-in#token=tok_single_use");

    await waitFor(() => expect(currentUrl()).toBe("/"));
    expect(urlAtCall).toBe("/sign-in");
    expect(grid.requestsOf("createSession")).toEqual([expect.objectContaining({ credential: { case: "signInToken", value: "tok_single_use" } })]);
    await waitFor(() => expect(screen.getByTestId("account-name").textContent).toBe(ACCOUNT_NAME));
  });

  it("explains a used sign-in link and offers the API key form", async () => {
    const grid = new FakeGrid();
    grid.signedIn = false;
    renderApp(grid, "/sign-in#token=tok_spent");
    expect((await screen.findByRole("alert")).textContent).toContain("sign-in link already used or expired");
    expect(currentUrl()).toBe("/sign-in");
    expect(screen.getByLabelText("API key")).toBeTruthy();
  });

  it("signs out", async () => {
    const grid = new FakeGrid();
    renderApp(grid, "/");
    await waitFor(() => expect(screen.getByTestId("account-name").textContent).toBe(ACCOUNT_NAME));
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await waitFor(() => expect(currentUrl()).toBe("/sign-in"));
    expect(grid.signedIn).toBe(false);
    expect(grid.requestsOf("deleteSession")).toHaveLength(1);
  });
});
