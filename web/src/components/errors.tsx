import { Component, type ErrorInfo, type ReactNode } from "react";
import { errorMessage } from "../connection";

/** A failed call or a refusal, as the server's own sentence. */
export function ErrorMessage({ error, prefix }: { error: unknown; prefix?: string }) {
  return (
    <p className="error-text" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {errorMessage(error)}
    </p>
  );
}

type BoundaryState = { error: unknown; failed: boolean };

/** Keeps a rendering bug from blanking the console: the page shows what broke instead. */
export class ErrorBoundary extends Component<{ children: ReactNode }, BoundaryState> {
  override state: BoundaryState = { error: undefined, failed: false };

  static getDerivedStateFromError(error: unknown): BoundaryState {
    return { error, failed: true };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    console.error("rgrid console: a view failed to render", error, info.componentStack);
  }

  override render(): ReactNode {
    if (!this.state.failed) return this.props.children;
    return (
      <section className="panel page-error">
        <h1>This page could not be shown</h1>
        <ErrorMessage error={this.state.error} />
        <p>
          <button type="button" onClick={() => this.setState({ error: undefined, failed: false })}>
            Try again
          </button>{" "}
          <a href="/">Back to executions</a>
        </p>
      </section>
    );
  }
}
