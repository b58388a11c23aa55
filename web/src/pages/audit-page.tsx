import { useQuery } from "@connectrpc/connect-query";
import { keepPreviousData } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { actionFromName, actionLabel, actionName, filterableActions } from "../audit";
import { AuditTable } from "../components/audit-table";
import { useDocumentTitle } from "../components/document-title";
import { ErrorMessage } from "../components/errors";
import { Pager, usePageToken } from "../components/pager";
import { formatShortTime } from "../format";
import { AuditAction, ExecutionService } from "../proto";
import { AUDIT_REFRESH_MS, PAGE_SIZE } from "../queries";

/** `/audit`: what was done in the account (retries, cancels, sign-ins), newest first; the action filter lives in the URL. */
export function AuditPage() {
  useDocumentTitle("Audit");
  const [params, setParams] = useSearchParams();
  const paging = usePageToken();
  const actionParam = params.get("action") ?? "";
  const action = actionFromName(actionParam);

  const audit = useQuery(
    ExecutionService.method.listAuditEntries,
    { action: action ?? AuditAction.UNSPECIFIED, pageSize: PAGE_SIZE, pageToken: paging.after },
    { refetchInterval: AUDIT_REFRESH_MS, placeholderData: keepPreviousData },
  );

  /** A changed filter starts again from the first page. */
  const setAction = (name: string) => {
    setParams((current) => {
      const next = new URLSearchParams(current);
      if (name) next.set("action", name);
      else next.delete("action");
      next.delete("after");
      return next;
    });
  };

  const entries = audit.data?.entries ?? [];
  return (
    <section className="page">
      <div className="page-header">
        <h1>Audit</h1>
        <span className="muted live-indicator" aria-live="off">
          {audit.dataUpdatedAt > 0 ? `Updated ${formatShortTime(audit.dataUpdatedAt)}` : ""}
        </span>
      </div>
      <form className="toolbar" role="search" aria-label="Filter audit entries" onSubmit={(event) => event.preventDefault()}>
        <label className="toolbar-field">
          <span>Action</span>
          <select aria-label="Action" value={action === undefined ? "" : actionParam} onChange={(event) => setAction(event.target.value)}>
            <option value="">All actions</option>
            {filterableActions.map((value) => (
              <option key={value} value={actionName(value)}>
                {actionLabel(value)}
              </option>
            ))}
          </select>
        </label>
        {action !== undefined && (
          <button type="button" className="link-button" onClick={() => setAction("")}>
            Clear filter
          </button>
        )}
      </form>

      {audit.error && <ErrorMessage error={audit.error} />}
      {audit.isPending ? (
        <p className="muted">Loading audit entries…</p>
      ) : entries.length === 0 ? (
        audit.data && (
          <div className="empty-state">
            {action !== undefined ? (
              <p>No {actionLabel(action)} entries.</p>
            ) : paging.after ? (
              <p>No more entries.</p>
            ) : (
              <p>Nothing recorded yet: retries, cancels and sign-ins appear here.</p>
            )}
          </div>
        )
      ) : (
        <AuditTable entries={entries} />
      )}
      <Pager paging={paging} nextToken={audit.data?.nextPageToken || undefined} />
    </section>
  );
}
