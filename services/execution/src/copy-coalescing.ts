// Retries' copies, coalesced. While a call is on its way to storage-service, the copies asked for
// meanwhile wait, and leave together as one CopyInputsBatch when it returns (or after
// MAX_WAIT_MILLIS, should it not). An idle service sends each copy at once, exactly as before; a
// busy one pays one call's protocol work (HTTP/2 frames, encoding, validation, authentication:
// most of a small copy's cost, on both sides) for many retries, and the batches grow by
// themselves as storage slows down.

import type { ObjectInfo } from "@rgrid/proto";
import { StorageRejectedError } from "./errors";
import type { InputsCopy, StorageGateway } from "./storage";
import { MAX_COPIES_PER_BATCH } from "./storage";

/**
 * A copy with more objects than this is sent on its own at once, never held back nor holding
 * others back: a batch's copies all wait for the slowest.
 */
export const MAX_COALESCED_OBJECTS = 64;

/**
 * The longest a copy waits for the call in flight before it leaves in a call of its own (with
 * whatever waits with it): a call that is slow (a large object, an object store in trouble) must
 * not hold back every other retry of the service. Calls to storage normally return within a few
 * milliseconds, well inside it.
 */
export const MAX_WAIT_MILLIS = 50;

interface Waiting {
  copy: InputsCopy;
  resolve: (copied: ObjectInfo[]) => void;
  reject: (error: unknown) => void;
}

/**
 * `gateway` with copyInputs coalesced as above. A copy's answer is what a CopyInputs of its own
 * would have been: its objects, a StorageRejectedError with storage's reason, or the error of
 * the call it travelled in (storage unreachable fails every copy of that call alike).
 */
export function coalesceCopies(gateway: StorageGateway): StorageGateway {
  const waiting: Waiting[] = [];
  let callsInFlight = 0;
  let waitTimer: NodeJS.Timeout | undefined;
  const stopWaitTimer = () => {
    clearTimeout(waitTimer);
    waitTimer = undefined;
  };

  const sendOne = (copy: InputsCopy) => gateway.copyInputs(copy.sourceId, copy.targetId, copy.inputNames, copy.scriptName);

  const sendBatch = async (batch: Waiting[]): Promise<void> => {
    if (batch.length === 1) {
      const [only] = batch as [Waiting];
      await sendOne(only.copy).then(only.resolve, only.reject);
      return;
    }
    try {
      const outcomes = await gateway.copyInputsBatch(batch.map((item) => item.copy));
      batch.forEach((item, index) => {
        const outcome = outcomes[index] as (typeof outcomes)[number];
        if (outcome.refused === "") {
          item.resolve(outcome.copied);
        } else {
          item.reject(new StorageRejectedError(outcome.refused));
        }
      });
    } catch (error) {
      for (const item of batch) {
        item.reject(error);
      }
    }
  };

  // Each call, when it returns, takes every waiting copy it may.
  const drain = async (): Promise<void> => {
    callsInFlight++;
    try {
      while (waiting.length > 0) {
        const batch = takeBatch(waiting);
        if (waiting.length === 0) {
          stopWaitTimer();
        }
        await sendBatch(batch);
      }
    } finally {
      callsInFlight--;
    }
  };
  const startWaitTimer = () => {
    waitTimer ??= setTimeout(() => {
      waitTimer = undefined;
      if (waiting.length > 0) {
        void drain();
      }
    }, MAX_WAIT_MILLIS).unref();
  };

  return {
    ...gateway,
    copyInputs(sourceId, targetId, inputNames, scriptName) {
      const copy = { sourceId, targetId, inputNames, scriptName };
      if (objectCount(copy) > MAX_COALESCED_OBJECTS) {
        return sendOne(copy);
      }
      return new Promise<ObjectInfo[]>((resolve, reject) => {
        waiting.push({ copy, resolve, reject });
        if (callsInFlight === 0) {
          void drain();
        } else {
          startWaitTimer();
        }
      });
    },
  };
}

/**
 * The waiting copies, oldest first, that one CopyInputsBatch accepts: at most
 * MAX_COPIES_PER_BATCH, and no copy writing what another reads or writes (storage.proto). Copies
 * of one original share it as their source. A copy that clashes stays, in its place, for the
 * next call.
 */
function takeBatch(waiting: Waiting[]): Waiting[] {
  const batch: Waiting[] = [];
  const sources = new Set<string>();
  const targets = new Set<string>();
  for (let index = 0; index < waiting.length && batch.length < MAX_COPIES_PER_BATCH; ) {
    const { copy } = waiting[index] as Waiting;
    if (targets.has(copy.targetId) || targets.has(copy.sourceId) || sources.has(copy.targetId)) {
      index++;
      continue;
    }
    sources.add(copy.sourceId);
    targets.add(copy.targetId);
    batch.push(...waiting.splice(index, 1));
  }
  return batch;
}

const objectCount = (copy: InputsCopy) => copy.inputNames.length + (copy.scriptName === "" ? 0 : 1);
