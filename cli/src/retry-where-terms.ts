// What `rgrid retry --where` tells its user before anything heavier is loaded: the help text of
// the conditions, and how many lineages it retries without asking.

export const CONDITIONS_HELP =
  "status=failed,timed_out  cause=script,timeout,runner_lost,infrastructure  exit=3,75  error=TEXT (contained)  " +
  "script=NAME  batch=BATCH_ID  since=2h|TIME  until=TIME  unresolved (no attempt of its lineage completed)";

/** More lineages than this are retried only after the user says so (or --yes). */
export const ASK_ABOVE = 10;
