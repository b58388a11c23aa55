import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { useDocumentTitle } from "../components/document-title";
import { errorMessage } from "../connection";
import { ExecutionService } from "../proto";

/**
 * Takes the single-use token of a sign-in link (`/sign-in#token=…`) out of the address bar, so
 * it stays neither in the history nor in a bookmark. Called before the page does anything else.
 */
function takeSignInToken(): string | undefined {
  const fragment = window.location.hash.replace(/^#/, "");
  if (!fragment) return undefined;
  const token = new URLSearchParams(fragment).get("token") ?? undefined;
  if (token === undefined) return undefined;
  window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
  return token || undefined;
}

/** `/sign-in`: exchanges a sign-in link's token or a pasted API key for a session cookie. */
export function SignInPage() {
  useDocumentTitle("Sign in");
  const [linkToken] = useState(takeSignInToken);
  const [apiKey, setApiKey] = useState("");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const tokenSent = useRef(false);
  const signIn = useMutation(ExecutionService.method.createSession, {
    onSuccess: () => {
      // Whatever was read before (the failed session check among it) belongs to no one now.
      queryClient.clear();
      void navigate("/", { replace: true });
    },
  });

  const { mutate } = signIn;
  useEffect(() => {
    // Once, although React may run a mount effect twice: the token is single-use.
    if (!linkToken || tokenSent.current) return;
    tokenSent.current = true;
    mutate({ credential: { case: "signInToken", value: linkToken } });
  }, [linkToken, mutate]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const key = apiKey.trim();
    if (!key || signIn.isPending) return;
    signIn.mutate({ credential: { case: "apiKey", value: key } });
  };

  const usingLink = linkToken !== undefined && (signIn.isPending || signIn.isSuccess) && signIn.variables?.credential?.case === "signInToken";
  return (
    <main className="sign-in">
      <div className="sign-in-card">
        <h1 className="brand-title">rgrid</h1>
        {usingLink ? (
          <p>Signing in with your sign-in link…</p>
        ) : (
          <form onSubmit={submit} aria-label="Sign in">
            <p className="muted">Sign in with an API key of your account, or open the sign-in link that <code>npm start</code> prints.</p>
            <label className="field">
              <span>API key</span>
              <input
                type="password"
                name="api-key"
                autoComplete="off"
                spellCheck={false}
                value={apiKey}
                onChange={(event) => setApiKey(event.target.value)}
                required
              />
            </label>
            <button type="submit" className="primary" disabled={signIn.isPending}>
              Sign in
            </button>
          </form>
        )}
        {signIn.error && (
          <p className="error-text" role="alert">
            {signIn.variables?.credential?.case === "signInToken" ? "The sign-in link did not work: " : ""}
            {errorMessage(signIn.error)}
          </p>
        )}
      </div>
    </main>
  );
}
