// One dedicated PostgreSQL connection per replica, for what the replicas tell each other: it
// LISTENs to the cluster's channels and holds the maintenance leader's advisory lock. When it
// drops it is opened again with backoff; meanwhile nothing arrives, and the callers fall back to
// polling (see `connected`), and a lock it held is released by PostgreSQL with the session.
import { Client } from "pg";
import type { Logger } from "@rgrid/common";

export interface ChannelMessage {
  channel: string;
  payload: string;
}

export interface PostgresChannel {
  /** True while the connection is up and listening: notifications from other replicas arrive. */
  readonly connected: boolean;
  /** Counts the connections made: an answer from an earlier one speaks for a session that is gone. */
  readonly generation: number;
  /** Runs a statement on the dedicated connection (the advisory lock's); fails while disconnected. */
  query(sql: string, values: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  /** Called with every notification on the channels listened to. */
  onMessage(listener: (message: ChannelMessage) => void): void;
  /** Called each time the connection is (re)established and listening, and each time it is lost. */
  onConnectionChange(listener: (connected: boolean) => void): void;
  close(): Promise<void>;
}

export interface PostgresChannelOptions {
  url: string;
  channels: readonly string[];
  logger: Logger;
  /** First wait before reconnecting; doubled up to maxReconnectMillis. */
  reconnectMillis?: number;
  maxReconnectMillis?: number;
  /** How often an idle connection is checked, so a silently dead one is noticed. */
  checkIntervalMillis?: number;
}

/** The channels' sessions carry this name, by which the replicas find each other (peers.ts). */
export const CLUSTER_APPLICATION_NAME = "rgrid-cluster";

const DEFAULT_RECONNECT_MILLIS = 250;
const DEFAULT_MAX_RECONNECT_MILLIS = 5_000;
const DEFAULT_CHECK_INTERVAL_MILLIS = 5_000;

/** Opens the channel; resolves once the first attempt to connect has succeeded or failed (it keeps trying). */
export async function openPostgresChannel(options: PostgresChannelOptions): Promise<PostgresChannel> {
  const reconnectMillis = options.reconnectMillis ?? DEFAULT_RECONNECT_MILLIS;
  const maxReconnectMillis = options.maxReconnectMillis ?? DEFAULT_MAX_RECONNECT_MILLIS;
  const messageListeners: Array<(message: ChannelMessage) => void> = [];
  const connectionListeners: Array<(connected: boolean) => void> = [];
  let client: Client | undefined;
  let connected = false;
  let closed = false;
  let failures = 0;
  let generation = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;

  const setConnected = (value: boolean) => {
    if (connected !== value) {
      connected = value;
      connectionListeners.forEach((listener) => listener(value));
    }
  };

  const lose = (current: Client, error?: unknown) => {
    if (client !== current) {
      return; // an older connection, already replaced
    }
    client = undefined;
    current.removeAllListeners();
    current.on("error", () => undefined); // late errors of a connection given up
    void current.end().catch(() => undefined);
    if (connected) {
      options.logger.warn("lost the cluster channel; polling until it is back", { error });
    }
    setConnected(false);
    scheduleReconnect();
  };

  const scheduleReconnect = () => {
    if (closed || reconnectTimer !== undefined) {
      return;
    }
    const delay = Math.min(maxReconnectMillis, reconnectMillis * 2 ** Math.min(failures, 16));
    failures++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      void connect();
    }, delay);
    reconnectTimer.unref();
  };

  const connect = async (): Promise<void> => {
    const current = new Client({ connectionString: options.url, application_name: CLUSTER_APPLICATION_NAME });
    client = current;
    current.on("error", (error) => lose(current, error));
    current.on("end", () => lose(current));
    current.on("notification", (notification) => {
      const message = { channel: notification.channel, payload: notification.payload ?? "" };
      messageListeners.forEach((listener) => listener(message));
    });
    try {
      await current.connect();
      for (const channel of options.channels) {
        await current.query(`listen ${quoteIdentifier(channel)}`);
      }
    } catch (error) {
      lose(current, error);
      return;
    }
    if (closed || client !== current) {
      return;
    }
    failures = 0;
    generation++;
    options.logger.info("cluster channel listening", { channels: options.channels });
    setConnected(true);
  };

  // A connection that died without a word (a cut network) is found by using it.
  const checkTimer = setInterval(() => {
    const current = client;
    if (current !== undefined && connected) {
      current.query("select 1").catch((error: unknown) => lose(current, error));
    }
  }, options.checkIntervalMillis ?? DEFAULT_CHECK_INTERVAL_MILLIS);
  checkTimer.unref();

  await connect();

  return {
    get connected() {
      return connected;
    },
    get generation() {
      return generation;
    },
    async query(sql, values) {
      const current = client;
      if (current === undefined || !connected) {
        throw new Error("the cluster channel is not connected");
      }
      return (await current.query(sql, values as unknown[])).rows as Array<Record<string, unknown>>;
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onConnectionChange(listener) {
      connectionListeners.push(listener);
    },
    async close() {
      closed = true;
      clearInterval(checkTimer);
      clearTimeout(reconnectTimer);
      const current = client;
      client = undefined;
      setConnected(false);
      if (current !== undefined) {
        current.removeAllListeners();
        current.on("error", () => undefined);
        await current.end().catch(() => undefined);
      }
    },
  };
}

/** Channel names are the code's own; quoted all the same, as LISTEN takes no bound parameters. */
function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
