import { Component, type ErrorInfo, type ReactNode } from "react";
import { errorMessage } from "../connection";
import { refusalAdvice, refusalOf } from "../refusals";

/** A failed call or a refusal, as the server's own sentence, and what to do about it when known. */
export function ErrorMessage({ error, prefix }: { error: unknown; prefix?: string }) {
  const refusal = refusalOf(error);
  const advice = refusal && refusalAdvice(refusal);
  return (
    <div className="error-text" role="alert">
      <p>
        {prefix ? `${prefix}: ` : ""}
        {errorMessage(error)}
      </p>
      {advice && <p data-testid="refusal-advice">{advice}</p>}
    </div>
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
