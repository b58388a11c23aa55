// The download grants a runner is handed with each execution it claims. Asked of storage one
// execution at a time, they cost a storage call per claim; for executions queued together
// (BatchConfirmUploads) they are asked for at once, in as few calls as storage takes them, and
// kept here until each execution is claimed. A kept grant is handed out only while most of its
// life is ahead of it, so a runner always gets time to use it; past that, or when the
// execution is claimed through another replica, or was never asked for, the claim asks storage
// itself, as before.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Logger } from "@rgrid/common";
import type { TransferGrant } from "@rgrid/proto";
import type { Execution } from "../db/entities";
import { executionObjects } from "../storage";
import type { StorageGateway } from "../storage";

/** Executions whose grants are kept at most: bounds the memory of those never claimed here. */
const MAX_KEPT_EXECUTIONS = 10_000;
/** Executions with more files than this ask at their claim: few are, and their grants are many. */
const MAX_FILES_ASKED_AHEAD = 10;

export interface DownloadGrants {
  /** The grants a runner needs for `execution`: its script's, then its inputs' (executionObjects order). */
  grantsFor(execution: Execution): Promise<TransferGrant[]>;
  /** Asks storage now, in the background, for the grants of executions just queued. */
  prefetch(executions: readonly Execution[]): void;
}

interface Kept {
  grants: TransferGrant[];
  /** Handed out until then: half-way through the shortest grant's life as received. */
  usableUntilMs: number;
}

export function createDownloadGrants(deps: { storage: StorageGateway; clock: () => Date; logger: Logger }): DownloadGrants {
  const { storage, clock, logger } = deps;
  const kept = new Map<string, Kept>();
  const asked = new Map<string, Promise<Kept | undefined>>();

  const take = (executionId: string): Kept | undefined => {
    const entry = kept.get(executionId);
    kept.delete(executionId);
    return entry;
  };

  /** Drops what can no longer be handed out; kept in the order received, so the oldest go first. */
  const dropStale = (nowMs: number): void => {
    for (const [executionId, entry] of kept) {
      if (entry.usableUntilMs > nowMs) {
        return;
      }
      take(executionId);
    }
  };

  const keep = (received: TransferGrant[], receivedAtMs: number): Kept => {
    const expiries = received.map((grant) => (grant.expiresAt === undefined ? receivedAtMs : timestampMs(grant.expiresAt)));
    return { grants: received, usableUntilMs: receivedAtMs + (Math.min(...expiries) - receivedAtMs) / 2 };
  };

  return {
    prefetch(executions) {
      const nowMs = clock().getTime();
      dropStale(nowMs);
      const room = MAX_KEPT_EXECUTIONS - kept.size - asked.size;
      const wanted = executions
        .filter((execution) => 1 + execution.inputs.length <= MAX_FILES_ASKED_AHEAD && !kept.has(execution.id) && !asked.has(execution.id))
        .slice(0, Math.max(0, room));
      if (wanted.length === 0) {
        return;
      }
      const answered = storage.downloadGrantsOfMany(wanted.map((execution) => ({ executionId: execution.id, objects: executionObjects(execution) })));
      answered.catch((error: unknown) => logger.warn("could not ask for download grants ahead; each claim asks for its own", { error }));
      wanted.forEach((execution, index) => {
        const one = answered.then(
          (all) => keep(all[index] ?? [], nowMs),
          () => undefined,
        );
        asked.set(execution.id, one);
        void one.then((entry) => {
          // Still asked for: not claimed while the call was out.
          if (asked.get(execution.id) === one) {
            asked.delete(execution.id);
            if (entry !== undefined) {
              kept.set(execution.id, entry);
            }
          }
        });
      });
    },

    async grantsFor(execution) {
      const inFlight = asked.get(execution.id);
      asked.delete(execution.id);
      const entry = take(execution.id) ?? (inFlight === undefined ? undefined : await inFlight);
      if (entry !== undefined && entry.usableUntilMs > clock().getTime() && entry.grants.length === 1 + execution.inputs.length) {
        return entry.grants;
      }
      return storage.downloadGrants(execution.id, executionObjects(execution));
    },
  };
}
