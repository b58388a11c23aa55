import { useQuery } from "@connectrpc/connect-query";
import { keepPreviousData } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { ErrorMessage } from "../components/errors";
import { ExecutionTable } from "../components/execution-table";
import { FilterInput } from "../components/filter-input";
import { Pager, usePageToken } from "../components/pager";
import { useDocumentTitle } from "../components/document-title";
import { filterableStatuses, formatShortTime, statusFromName, statusNames } from "../format";
import { ExecutionService } from "../proto";
import { LIVE_REFRESH_MS, PAGE_SIZE } from "../queries";


/** `/`: every execution of the account, newest first, filtered on the server; the filters live in the URL. */
export function ExecutionsPage() {
  useDocumentTitle("Executions");
  const [params, setParams] = useSearchParams();
  const paging = usePageToken();
  const statusParam = params.get("status") ?? "";
  const status = statusFromName(statusParam);
  const script = params.get("script") ?? "";
  const batch = params.get("batch") ?? "";
  const unresolved = params.get("unresolved") === "1";
  const filtered = status !== undefined || script !== "" || batch !== "" || unresolved;

  const list = useQuery(
    ExecutionService.method.listExecutions,
    {
      statuses: status === undefined ? [] : [status],
      scriptName: script.trim(),
      batchId: batch.trim(),
      unresolved,
      pageSize: PAGE_SIZE,
      pageToken: paging.after,
    },
    { refetchInterval: LIVE_REFRESH_MS, placeholderData: keepPreviousData },
  );

  /** A changed filter starts again from the first page. */
  const setFilter = (name: string, value: string, replace: boolean) => {
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value) next.set(name, value);
        else next.delete(name);
        next.delete("after");
        return next;
      },
      { replace },
    );
  };

  const executions = list.data?.executions ?? [];
  return (
    <section className="page">
      <div className="page-header">
        <h1>Executions</h1>
        <span className="muted live-indicator" aria-live="off">
          {list.dataUpdatedAt > 0 ? `Live · updated ${formatShortTime(list.dataUpdatedAt)}` : ""}
        </span>
      </div>
      <form className="toolbar" role="search" aria-label="Filter executions" onSubmit={(event) => event.preventDefault()}>
        <label className="toolbar-field">
          <span>Status</span>
          <select aria-label="Status" value={status === undefined ? "" : statusParam} onChange={(event) => setFilter("status", event.target.value, false)}>
            <option value="">All statuses</option>
            {filterableStatuses.map((value) => (
              <option key={value} value={statusNames[value]}>
                {statusNames[value]}
              </option>
            ))}
          </select>
        </label>
        <label className="toolbar-field">
          <span>Script</span>
          <FilterInput label="Script" placeholder="script name contains" value={script} onCommit={(value) => setFilter("script", value, true)} />
        </label>
        <label className="toolbar-field">
          <span>Batch</span>
          <FilterInput label="Batch" placeholder="batch_…" value={batch} onCommit={(value) => setFilter("batch", value, true)} />
        </label>
        <label className="toolbar-check">
          <input
            type="checkbox"
            aria-label="Unresolved only"
            checked={unresolved}
            onChange={(event) => setFilter("unresolved", event.target.checked ? "1" : "", false)}
          />
          <span>Unresolved only</span>
        </label>
        {filtered && (
          <button type="button" className="link-button" onClick={() => setParams(new URLSearchParams())}>
            Clear filters
          </button>
        )}
      </form>

      {list.error && <ErrorMessage error={list.error} />}
      {list.isPending ? (
        <p className="muted">Loading executions…</p>
      ) : executions.length === 0 ? (
        list.data && (
          <div className="empty-state">
            {filtered ? (
              <p>No executions match these filters.</p>
            ) : paging.after ? (
              <p>No more executions.</p>
            ) : (
              <p>
                No executions yet. Start one with <code>rgrid run script.py</code>.
              </p>
            )}
          </div>
        )
      ) : (
        <ExecutionTable executions={executions} />
      )}
      <Pager paging={paging} nextToken={list.data?.nextPageToken || undefined} />
    </section>
  );
}
