// Whether any other replica listens on the cluster's channels. A replica alone on its database
// (the usual deployment of one execution-service on PostgreSQL) has nobody to tell of its work,
// and each announcement costs a pg_notify statement, its commit and its delivery back to the
// replica's own channel: about a tenth of the retries a replica can make per second. The others
// are the sessions named as cluster channels in pg_stat_activity, looked at every few seconds and
// whenever the channel reconnects; a replica that joins says so at once (signals.ts), and any
// word from another counts as its presence. While it cannot tell, a replica assumes the others
// are there: an announcement to nobody costs a little, a missed one keeps a claim waiting.
import { repeatOnChannel } from "./channel-task";
import { CLUSTER_APPLICATION_NAME } from "./postgres-channel";
import type { PostgresChannel } from "./postgres-channel";

export interface Peers {
  /** False only when the last look found no other replica and none has spoken since. */
  readonly present: boolean;
  /** Another replica was heard from. */
  heard(): void;
  stop(): void;
}

/** How often a replica looks again: the longest it announces work after the last other one left. */
const DEFAULT_LOOK_INTERVAL_MILLIS = 5_000;

export function watchPeers(channel: PostgresChannel, lookIntervalMillis = DEFAULT_LOOK_INTERVAL_MILLIS): Peers {
  let present = true;
  // Counts what was heard, so that a look begun before another replica spoke cannot undo it.
  let heardCount = 0;

  const stopLooking = repeatOnChannel(channel, lookIntervalMillis, {
    async run(session) {
      const heardBefore = heardCount;
      const [row] = await channel.query(
        "select exists (select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and pid <> pg_backend_pid()) as present",
        [CLUSTER_APPLICATION_NAME],
      );
      if (heardCount === heardBefore && channel.connected && channel.generation === session) {
        present = row?.["present"] !== false;
      }
    },
    lost() {
      present = true; // nobody can be seen from here now
    },
  });

  return {
    get present() {
      return present;
    },
    heard() {
      heardCount++;
      present = true;
    },
    stop: stopLooking,
  };
}
