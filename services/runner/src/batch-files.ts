// Small files this runner fetched for an execution of a batch, kept in memory so that its next
// execution of the same batch (one script over many inputs) writes them from there instead of
// downloading them again. Only bytes that match their SHA-256 are kept, and a kept file is
// written only for an execution that declared that SHA-256: it gets nothing but the bytes it
// declared. The key holds the batch as well, a random id its owner chose, so that whether a file
// was fetched here (which a faster start would tell) cannot be probed from outside the batch.
// Each execution gets a file of its own.
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import type { FileDigest } from "@rgrid/common";

/** Larger files are downloaded each time: kept, they would grow the runner, and every fork of it. */
const MAX_KEPT_FILE_BYTES = 256 * 1024;
/** All kept files together: the latest batches' scripts and shared inputs. */
const MAX_KEPT_BYTES = 4 * 1024 * 1024;

export interface BatchFiles {
  /** Writes the kept file of `batchId` with `expected` to `target` (which must not exist); false when none is kept. */
  writeTo(batchId: string, expected: FileDigest, target: string): Promise<boolean>;
  /** Keeps the bytes of `source`, a download of `expected`, if they match it and are small enough. */
  keep(batchId: string, expected: FileDigest, source: string): Promise<void>;
}

export function createBatchFiles(): BatchFiles {
  // By key, least recently used first.
  const kept = new Map<string, Buffer>();
  let keptBytes = 0;
  const keyOf = (batchId: string, expected: FileDigest) => `${batchId}/${expected.sha256}/${expected.sizeBytes}`;

  return {
    async writeTo(batchId, expected, target) {
      const key = keyOf(batchId, expected);
      const bytes = kept.get(key);
      if (bytes === undefined) {
        return false;
      }
      kept.delete(key);
      kept.set(key, bytes);
      await writeFile(target, bytes, { flag: "wx" });
      return true;
    },

    async keep(batchId, expected, source) {
      const key = keyOf(batchId, expected);
      if (expected.sizeBytes > MAX_KEPT_FILE_BYTES || kept.has(key)) {
        return;
      }
      const bytes = await readFile(source);
      if (bytes.length !== expected.sizeBytes || createHash("sha256").update(bytes).digest("hex") !== expected.sha256) {
        return;
      }
      kept.set(key, bytes);
      keptBytes += bytes.length;
      for (const [oldest, oldBytes] of kept) {
        if (keptBytes <= MAX_KEPT_BYTES) {
          break;
        }
        kept.delete(oldest);
        keptBytes -= oldBytes.length;
      }
    },
  };
}
