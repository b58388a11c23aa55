import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { ErrorBoundary } from "../components/errors";
import { errorMessage } from "../connection";
import { ExecutionService } from "../proto";

/** The signed-in console: header and the page. */
export function Layout() {
  const location = useLocation();
  return (
    <>
      <Header />
      <main className="content">
        {/* A new page starts without the previous page's rendering failure. */}
        <ErrorBoundary key={location.pathname}>
          <Outlet />
        </ErrorBoundary>
      </main>
    </>
  );
}

function Header() {
  const session = useQuery(ExecutionService.method.getSession, {}, { staleTime: 60_000 });
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const signOut = useMutation(ExecutionService.method.deleteSession, {
    onSuccess: () => {
      queryClient.clear();
      void navigate("/sign-in", { replace: true });
    },
  });
  const account = session.data?.session;
  return (
    <header className="topbar">
      <Link to="/" className="brand">
        rgrid
      </Link>
      <nav className="topnav" aria-label="Main">
        <NavLink to="/" end>
          Executions
        </NavLink>
        <NavLink to="/audit">Audit</NavLink>
      </nav>
      <div className="account">
        {signOut.error && (
          <span className="error-text" role="alert">
            {errorMessage(signOut.error)}
          </span>
        )}
        <span className="account-name" data-testid="account-name" title={account?.accountId}>
          {account?.accountName || account?.accountId || ""}
        </span>
        <button type="button" className="small" onClick={() => signOut.mutate({})} disabled={signOut.isPending}>
          Sign out
        </button>
      </div>
    </header>
  );
}
