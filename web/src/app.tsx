import { TransportProvider } from "@connectrpc/connect-query";
import type { Transport } from "@connectrpc/connect";
import { QueryClientProvider, type QueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { BrowserRouter, Link, Route, Routes, useLocation, useNavigate } from "react-router";
import { ConnectionEventsContext } from "./app-context";
import { ConnectionBanner } from "./components/connection-banner";
import { useDocumentTitle } from "./components/document-title";
import { ErrorBoundary } from "./components/errors";
import { ModalBackground, ModalLayer, ModalLayerProvider } from "./components/modal";
import { ConnectionEvents, createQueryClient } from "./connection";
import { AuditPage } from "./pages/audit-page";
import { BatchPage } from "./pages/batch-page";
import { ComparePage } from "./pages/compare-page";
import { ExecutionRoute } from "./pages/execution-page";
import { ExecutionsPage } from "./pages/executions-page";
import { Layout } from "./pages/layout";
import { SignInPage } from "./pages/sign-in-page";

export type AppProps = {
  transport: Transport;
  /** Delay before re-sending after a lost connection (exponential backoff when unset; tests shorten it). */
  retryDelayMs?: (attempt: number) => number;
};

/** The whole console: API transport, query cache, connection state, routes. */
export function App({ transport, retryDelayMs }: AppProps) {
  const [events] = useState(() => new ConnectionEvents({ retryDelayMs }));
  const [queryClient] = useState<QueryClient>(() => createQueryClient(events));
  const [modalLayer] = useState(() => new ModalLayer());
  return (
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <ConnectionEventsContext.Provider value={events}>
          <ModalLayerProvider layer={modalLayer}>
            <BrowserRouter>
              <ConnectionBanner events={events} />
              <SignInOnUnauthenticated events={events} />
              <ModalBackground className="app">
                <ErrorBoundary>
                  <Routes>
                    <Route path="/sign-in" element={<SignInPage />} />
                    <Route element={<Layout />}>
                      <Route index element={<ExecutionsPage />} />
                      <Route path="executions/:id" element={<ExecutionRoute />} />
                      <Route path="batches/:id" element={<BatchPage />} />
                      <Route path="compare/:a/:b" element={<ComparePage />} />
                      <Route path="audit" element={<AuditPage />} />
                      <Route path="*" element={<NotFound />} />
                    </Route>
                  </Routes>
                </ErrorBoundary>
              </ModalBackground>
            </BrowserRouter>
          </ModalLayerProvider>
        </ConnectionEventsContext.Provider>
      </QueryClientProvider>
    </TransportProvider>
  );
}

/** Any call answered Unauthenticated (no session, or it expired or was revoked) leads to /sign-in. */
function SignInOnUnauthenticated({ events }: { events: ConnectionEvents }) {
  const navigate = useNavigate();
  const location = useLocation();
  const pathname = useRef(location.pathname);
  pathname.current = location.pathname;
  useEffect(
    () =>
      events.onUnauthenticated(() => {
        if (pathname.current !== "/sign-in") void navigate("/sign-in", { replace: true });
      }),
    [events, navigate],
  );
  return null;
}

function NotFound() {
  useDocumentTitle("Not found");
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to executions</Link>
      </p>
    </section>
  );
}
