// Several execution-service replicas on one PostgreSQL database: each opens a cluster channel,
// through which the replicas wake each other's waiting calls (signals.ts), see whether any other
// is there to hear them (peers.ts) and elect the one that runs maintenance (leadership.ts). A
// SQLite database is one process's, and needs none of it.
import { randomBytes } from "node:crypto";
import type { Logger } from "@rgrid/common";
import type { Leadership } from "./leadership";
import { createPostgresLeadership } from "./leadership";
import { watchPeers } from "./peers";
import type { Peers } from "./peers";
import { openPostgresChannel } from "./postgres-channel";
import type { PostgresChannel } from "./postgres-channel";
import { CLUSTER_CHANNELS } from "./signals";

export interface Cluster {
  /** Names this replica in its notifications (and its log lines). */
  replicaId: string;
  channel: PostgresChannel;
  leadership: Leadership;
  peers: Peers;
  close(): Promise<void>;
}

export interface ClusterOptions {
  databaseUrl: string;
  logger: Logger;
  /** How often a replica that does not lead asks to; see leadership.ts. */
  leaderClaimIntervalMillis?: number;
}

export async function joinCluster(options: ClusterOptions): Promise<Cluster> {
  const replicaId = `replica_${randomBytes(6).toString("hex")}`;
  const logger = options.logger.child("cluster");
  const channel = await openPostgresChannel({ url: options.databaseUrl, channels: CLUSTER_CHANNELS, logger });
  const leadership = createPostgresLeadership(channel, logger, options.leaderClaimIntervalMillis);
  const peers = watchPeers(channel);
  return {
    replicaId,
    channel,
    leadership,
    peers,
    async close() {
      leadership.stop();
      peers.stop();
      await channel.close();
    },
  };
}
