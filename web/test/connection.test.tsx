import { Code, ConnectError } from "@connectrpc/connect";
import { ConnectionEvents, createQueryClient } from "../src/connection";

test("queries lost to the connection are re-sent after 1 s, 2 s, 4 s…, other failures are final", () => {
  const defaults = createQueryClient(new ConnectionEvents()).getDefaultOptions().queries;
  const lost = new ConnectError("connection lost", Code.Unavailable);
  const retryDelay = defaults?.retryDelay as (failureCount: number, error: Error) => number;
  const retry = defaults?.retry as (failureCount: number, error: Error) => boolean;
  // TanStack passes the failures before this one: 0 for the first re-send.
  expect([0, 1, 2, 10].map((failures) => retryDelay(failures, lost))).toEqual([1000, 2000, 4000, 10_000]);
  expect(retry(0, lost)).toBe(true);
  expect(retry(0, new ConnectError("no such execution", Code.NotFound))).toBe(false);
});
