// Several execution-service replicas on one PostgreSQL database: each opens a cluster channel,
// through which the replicas wake each other's waiting calls (signals.ts) and elect the one that
// runs maintenance (leadership.ts). A SQLite database is one process's, and needs neither.
import { randomBytes } from "node:crypto";
import type { Logger } from "@rgrid/common";
import type { Leadership } from "./leadership";
import { createPostgresLeadership } from "./leadership";
import { openPostgresChannel } from "./postgres-channel";
import type { PostgresChannel } from "./postgres-channel";
import { CLUSTER_CHANNELS } from "./signals";

export interface Cluster {
  /** Names this replica in its notifications (and its log lines). */
  replicaId: string;
  channel: PostgresChannel;
  leadership: Leadership;
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
  return {
    replicaId,
    channel,
    leadership,
    async close() {
      leadership.stop();
      await channel.close();
    },
  };
}
