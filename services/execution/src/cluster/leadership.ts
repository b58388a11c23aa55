// Maintenance (the lease sweep with its missed automatic retries, the janitor) runs on one replica
// at a time: the one holding a PostgreSQL advisory lock on its cluster channel. The lock is the
// session's, so a replica that dies — or only loses that connection — lets go of it at once, and
// another takes it at its next try. The tasks stay correct if two ever ran together (their
// changes are conditional); leadership only spares the database the same work done N times.
import type { Logger } from "@rgrid/common";
import { repeatOnChannel } from "./channel-task";
import type { PostgresChannel } from "./postgres-channel";

export interface Leadership {
  /** True while this replica may run the maintenance tasks. */
  isLeader(): boolean;
  stop(): void;
}

/** A single process (SQLite, tests) leads on its own. */
export const soleLeader: Leadership = { isLeader: () => true, stop: () => undefined };

/** Any fixed number names the lock; this one is rgrid's ("rgrd" in ASCII). */
const MAINTENANCE_LOCK_KEY = 0x72677264;
/** How often a follower asks for the lock: the longest a dead leader's tasks wait for a successor. */
const DEFAULT_CLAIM_INTERVAL_MILLIS = 2_000;

export function createPostgresLeadership(
  channel: PostgresChannel,
  logger: Logger,
  claimIntervalMillis = DEFAULT_CLAIM_INTERVAL_MILLIS,
): Leadership {
  let leader = false;

  const setLeader = (value: boolean) => {
    if (leader !== value) {
      leader = value;
      logger.info(value ? "leading maintenance (lease sweeps, janitor)" : "no longer leading maintenance");
    }
  };

  const stopClaiming = repeatOnChannel(channel, claimIntervalMillis, {
    async run(session) {
      if (leader) {
        return;
      }
      const [row] = await channel.query("select pg_try_advisory_lock($1) as locked", [MAINTENANCE_LOCK_KEY]);
      // The lock belongs to the session that answered: if the channel reconnected meanwhile, it is gone.
      setLeader(row?.["locked"] === true && channel.connected && channel.generation === session);
    },
    lost: () => setLeader(false), // the lock went with the session
  });

  return {
    isLeader: () => leader,
    stop() {
      stopClaiming();
      setLeader(false);
    },
  };
}
