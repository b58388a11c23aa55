import { createConnectQueryKey } from "@connectrpc/connect-query";
import type { QueryClient } from "@tanstack/react-query";
import { ExecutionService } from "./proto";

/** After a change (retry, cancel): every execution, list and batch shown is re-read. */
export function invalidateExecutions(queryClient: QueryClient): Promise<void> {
  return queryClient.invalidateQueries({
    queryKey: createConnectQueryKey({ schema: ExecutionService, cardinality: undefined }),
  });
}
