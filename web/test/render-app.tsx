import { render } from "@testing-library/react";
import { App } from "../src/app";
import type { FakeGrid } from "./fake-grid";

/** The whole console at `url`, talking to the fake grid; reconnects are quick. */
export function renderApp(grid: FakeGrid, url = "/") {
  window.history.replaceState(null, "", url);
  return render(<App transport={grid.transport()} retryDelayMs={() => 10} />);
}

export function currentUrl(): string {
  return window.location.pathname + window.location.search + window.location.hash;
}
