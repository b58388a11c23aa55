// What one replica's waiting calls need to hear of another's work: an execution queued (waiting
// claims look again) and an execution's log lines stored or its end (its FollowLogs streams look
// again). Each local notification is sent with pg_notify through the database pool, so it goes
// out whenever the database is reachable; each replica hears them on its cluster channel.
// A burst (a runner appending lines every few milliseconds, a batch queueing thousands, retries
// arriving 16 at a time) is coalesced: one statement at a time, carrying everything notified
// while the one before it was on its way. Each pg_notify commit takes PostgreSQL's one
// notification-queue lock, so a statement per notification would make every retry wait in line.
// With no other replica there to hear it (peers.ts), nothing is sent at all.
//
// A replica whose channel starts listening says so (JOINED); each other replica, from then on
// announcing its work, answers it (WELCOME), and the newcomer's waiting calls look again on
// hearing the answer: whatever changed before that replica knew of it is found by that look.
import type { Logger } from "@rgrid/common";
import type { Database } from "../db/orm";
import { withSqlSession } from "../db/sql-session";
import type { ExecutionActivity } from "../executions/execution-activity";
import type { WorkNotifier } from "../executions/work-notifier";
import type { Peers } from "./peers";
import type { ChannelMessage, PostgresChannel } from "./postgres-channel";

export const WORK_CHANNEL = "rgrid_work";
export const LOGS_CHANNEL = "rgrid_logs";
export const CLUSTER_CHANNELS = [WORK_CHANNEL, LOGS_CHANNEL] as const;
/** On the work channel, after the sender's id: its channel has just started listening. */
const JOINED = "joined";
/** On the work channel, after the sender's id and before the newcomer's: the answer to JOINED; the sender now announces its work. */
const WELCOME = "welcome";

export interface ClusterSignalDeps {
  db: Database;
  channel: PostgresChannel;
  /** Whether any other replica is there to hear; told of every word from one. */
  peers: Peers;
  /** This replica's own id: its notifications come back to it too, and are ignored. */
  replicaId: string;
  notifier: WorkNotifier;
  logActivity: ExecutionActivity;
  logger: Logger;
}

/** Relays this replica's notifications to the others, and wakes its waiting calls on theirs. */
export function connectClusterSignals(deps: ClusterSignalDeps): void {
  const { channel, peers, replicaId, notifier, logActivity } = deps;
  let workPending = false;
  const executionsPending = new Set<string>();
  let flushScheduled = false;
  let flushing = false;

  const flush = async () => {
    flushScheduled = false;
    flushing = true;
    const payloads = [
      ...(workPending ? [{ channel: WORK_CHANNEL, payload: replicaId }] : []),
      ...[...executionsPending].map((executionId) => ({ channel: LOGS_CHANNEL, payload: `${replicaId} ${executionId}` })),
    ];
    workPending = false;
    executionsPending.clear();
    try {
      await send(payloads);
    } finally {
      flushing = false;
    }
    if (workPending || executionsPending.size > 0) {
      scheduleFlush();
    }
  };
  const send = async (payloads: readonly ChannelMessage[]) => {
    try {
      await withSqlSession(deps.db, (sql) =>
        sql.query("select pg_notify(c, p) from unnest(?::text[], ?::text[]) as n(c, p)", [
          payloads.map((item) => item.channel),
          payloads.map((item) => item.payload),
        ]),
      );
    } catch (error) {
      // The other replicas find the work on their next look (they poll while they hear nothing).
      deps.logger.warn("could not tell the other replicas; they find the change when they next look", { error });
    }
  };
  const say = (word: string) => void send([{ channel: WORK_CHANNEL, payload: `${replicaId} ${word}` }]);
  // What is notified while a statement is on its way waits for it, and goes with the next one.
  const scheduleFlush = () => {
    if (!flushScheduled && !flushing) {
      flushScheduled = true;
      setImmediate(() => void flush());
    }
  };

  notifier.relay = () => {
    if (peers.present) {
      workPending = true;
      scheduleFlush();
    }
  };
  logActivity.relay = (executionId) => {
    if (peers.present) {
      executionsPending.add(executionId);
      scheduleFlush();
    }
  };

  channel.onMessage((message) => {
    const [sender, detail, addressee] = message.payload.split(" ");
    if (sender === replicaId) {
      return;
    }
    peers.heard();
    if (message.channel === WORK_CHANNEL) {
      notifier.wake();
      if (detail === JOINED) {
        say(`${WELCOME} ${sender}`);
      } else if (detail === WELCOME && addressee === replicaId) {
        logActivity.wakeAll();
      }
    } else if (message.channel === LOGS_CHANNEL && detail !== undefined) {
      logActivity.wake(detail);
    }
  });
  // Whatever was announced while the channel was down went unheard: every waiting call looks again.
  channel.onConnectionChange((connected) => {
    if (connected) {
      notifier.wake();
      logActivity.wakeAll();
      say(JOINED);
    }
  });
  if (channel.connected) {
    say(JOINED);
  }
}
