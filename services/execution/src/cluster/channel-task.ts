// A statement a replica runs on its cluster channel's own session, again and again: when the
// channel (re)connects and every interval while it is up, never two at once. Leadership asks for
// its lock this way, and peers look for the other replicas.
import type { PostgresChannel } from "./postgres-channel";

export interface ChannelTask {
  /**
   * One turn, given the session it runs in (`channel.generation`): an answer is that session's,
   * and speaks for nothing once the channel has reconnected. A failure is the channel's, which
   * says so itself; the next turn comes after it is back.
   */
  run(session: number): Promise<void>;
  /** Called each time the channel's session ends: what it held or saw is gone with it. */
  lost(): void;
}

/** Starts the turns; returns what stops them. */
export function repeatOnChannel(channel: PostgresChannel, intervalMillis: number, task: ChannelTask): () => void {
  let running = false;
  const turn = async () => {
    if (running || !channel.connected) {
      return;
    }
    running = true;
    try {
      await task.run(channel.generation);
    } catch {
      // The channel is down; see ChannelTask.run.
    } finally {
      running = false;
    }
  };
  channel.onConnectionChange((connected) => {
    if (connected) {
      void turn();
    } else {
      task.lost();
    }
  });
  const timer = setInterval(() => void turn(), intervalMillis);
  timer.unref();
  void turn();
  return () => clearInterval(timer);
}
