import { useLocation, useNavigate, useSearchParams } from "react-router";

type PagingHistory = { previousTokens?: string[] };

/**
 * Keyset paging kept in the URL: `after` is the page token of the page shown (absent on the
 * first page); the tokens of the pages before it travel in the history entry's state, so
 * Previous steps back one page, and a shared link's Previous goes back to the first page.
 */
export function usePageToken() {
  const [params] = useSearchParams();
  const location = useLocation();
  const navigate = useNavigate();
  const after = params.get("after") ?? "";
  const state = location.state as PagingHistory | null;
  const previousTokens = Array.isArray(state?.previousTokens) ? state.previousTokens : [];

  const show = (token: string, tokensBefore: string[]) => {
    const next = new URLSearchParams(params);
    if (token) next.set("after", token);
    else next.delete("after");
    const search = next.toString();
    void navigate({ search: search ? `?${search}` : "" }, { state: { previousTokens: tokensBefore } satisfies PagingHistory });
  };

  return {
    after,
    /** 1-based, when known (a shared link to a later page does not say which). */
    pageNumber: after === "" ? 1 : previousTokens.length > 0 ? previousTokens.length + 1 : undefined,
    next: (token: string) => show(token, [...previousTokens, after]),
    previous: () => {
      if (previousTokens.length === 0) show("", []);
      else show(previousTokens[previousTokens.length - 1] ?? "", previousTokens.slice(0, -1));
    },
  };
}

/** Previous and Next over `paging` (usePageToken); Next goes to the page `nextToken` names. */
export function Pager({ paging, nextToken }: { paging: ReturnType<typeof usePageToken>; nextToken: string | undefined }) {
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" onClick={paging.previous} disabled={paging.after === ""}>
        Previous
      </button>
      {paging.pageNumber !== undefined && <span className="muted">Page {paging.pageNumber}</span>}
      <button type="button" onClick={() => nextToken && paging.next(nextToken)} disabled={!nextToken}>
        Next
      </button>
    </nav>
  );
}
