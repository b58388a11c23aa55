import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants, createWriteStream } from "node:fs";
import { copyFile, link, mkdir, open, opendir, readdir, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Readable, TransformCallback } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isExecutionId } from "@rgrid/common";
import type { Clock } from "./clock";
import { errorCode, isMissing, isPathConflict, LINK_FALLBACK_CODES } from "./fs-errors";
import { createLinker } from "./fs-links";
import { EXECUTIONS_PREFIX, executionPrefix, PARTIAL_FILE_PATTERN } from "./keys";
import type { ObjectGrant, ObjectStore, StoredExecutionSummary, StoredObject } from "./object-store";
import { ObjectConflictError, ObjectNotFoundError } from "./object-store";
import type { SignedMethod, UrlSigner } from "./url-signing";

export interface FileSystemStoreOptions {
  /** Directory that holds the objects, one file per key. */
  root: string;
  signer: UrlSigner;
  /** Base of the signed URLs handed out; read per grant because it may be known only once listening. */
  publicBaseUrl: () => string;
  clock: Clock;
}

export interface WriteLimits {
  maxBytes: number;
  /** The announced length (Content-Length); a body of another length is refused. */
  expectedBytes?: number;
  /** The SHA-256 the upload grant was issued for; a body with another digest is refused. */
  expectedSha256?: string;
}

export interface OpenedObject {
  sizeBytes: number;
  stream: Readable;
}

/** The filesystem backend, plus the byte-level access its signed-URL endpoint needs. */
export interface FileSystemStore extends ObjectStore {
  /** Streams `source` into the object; it becomes visible only once complete. Returns its size. */
  write(key: string, source: Readable, limits: WriteLimits): Promise<number>;
  /** The object opened for reading, or undefined when it does not exist. */
  open(key: string): Promise<OpenedObject | undefined>;
}

export class ObjectTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`object exceeds the limit of ${maxBytes} bytes`);
    this.name = "ObjectTooLargeError";
  }
}

export class IncompleteUploadError extends Error {
  constructor(expectedBytes: number, receivedBytes: number) {
    super(`upload announced ${expectedBytes} bytes but sent ${receivedBytes}`);
    this.name = "IncompleteUploadError";
  }
}

export class UploadDigestMismatchError extends Error {
  constructor(expectedSha256: string, receivedSha256: string) {
    super(`upload has SHA-256 ${receivedSha256}, but this grant is for ${expectedSha256}; nothing was stored`);
    this.name = "UploadDigestMismatchError";
  }
}

export function createFileSystemStore(options: FileSystemStoreOptions): FileSystemStore {
  const root = resolve(options.root);

  const pathOf = (key: string): string => {
    const path = join(root, ...key.split("/").filter((segment) => segment !== ""));
    // Keys are validated before they get here; this guards the file system regardless.
    if (!path.startsWith(root + sep)) {
      throw new Error(`key ${JSON.stringify(key)} escapes the storage root`);
    }
    return path;
  };

  const grant = (method: SignedMethod, key: string, ttlSeconds: number, sha256?: string): ObjectGrant => {
    const expiresAtSeconds = Math.floor(options.clock.now().getTime() / 1000) + ttlSeconds;
    return {
      method,
      url: options.signer.url(options.publicBaseUrl(), { method, key, expiresAtSeconds, ...(sha256 === undefined ? {} : { sha256 }) }),
      headers: {},
      expiresAt: new Date(expiresAtSeconds * 1000),
    };
  };

  const linker = createLinker({ root, directoryMode: PRIVATE_DIRECTORY });

  const statFile = async (key: string): Promise<StoredObject | undefined> => {
    try {
      const info = await stat(pathOf(key));
      return info.isFile() ? { key, sizeBytes: info.size } : undefined;
    } catch (error) {
      if (isMissing(error)) {
        return undefined;
      }
      throw error;
    }
  };

  /**
   * Runs `create` (which writes `partial`) and renames the result onto the key's path, so
   * readers see the old object or the new one, never a half-written file.
   */
  const writeAtomically = async (key: string, create: (partial: string) => Promise<void>): Promise<void> => {
    const target = pathOf(key);
    const partial = `${target}.rgrid-partial-${randomBytes(8).toString("hex")}`;
    try {
      await mkdir(dirname(target), { recursive: true, mode: PRIVATE_DIRECTORY });
      await create(partial);
      await rename(partial, target);
    } catch (error) {
      // Best effort: the partial may never have been created, and the original error matters.
      await rm(partial, { force: true }).catch(() => undefined);
      throw isPathConflict(error) ? new ObjectConflictError(key) : error;
    }
  };

  const removeEmptyParents = async (path: string): Promise<void> => {
    // Empty directories left by deletes are pruned so an execution leaves nothing behind. The
    // top-level directory ("executions") stays: every write creates its path below it, and
    // removing it could pull the ground from under another execution's write in between its
    // mkdir and its file creation.
    for (let dir = dirname(path); dirname(dir) !== root && dir.startsWith(root + sep); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): ancestors are not empty either
      }
    }
  };

  return {
    async uploadGrant(key, ttlSeconds, expectedSha256) {
      return grant("PUT", key, ttlSeconds, expectedSha256);
    },

    async downloadGrant(key, ttlSeconds) {
      return grant("GET", key, ttlSeconds);
    },

    stat: statFile,

    async list(prefix) {
      const found: StoredObject[] = [];
      if (!prefix.endsWith("/")) {
        throw new Error(`list prefix ${JSON.stringify(prefix)} must end in '/'`);
      }
      for (const path of await walkFiles(pathOf(prefix))) {
        const key = relative(root, path).split(sep).join("/");
        if (key.startsWith(prefix) && !PARTIAL_FILE_PATTERN.test(key)) {
          const info = await statFile(key);
          if (info) {
            found.push(info);
          }
        }
      }
      return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async listExecutions(afterExecutionId, limit) {
      const found: StoredExecutionSummary[] = [];
      let cursor = afterExecutionId;
      // A directory may hold no object (only an upload in progress, or emptied by a delete
      // meanwhile): it is skipped and further ids are read in its place, so a short page
      // really is the last one.
      while (found.length < limit) {
        const wanted = limit - found.length;
        const candidates = await firstDirectoriesAfter(pathOf(EXECUTIONS_PREFIX), cursor, wanted, isExecutionId);
        for (const executionId of candidates) {
          const newest = await newestChange(pathOf(executionPrefix(executionId)));
          if (newest !== undefined) {
            found.push({ executionId, newestObjectAt: newest });
          }
        }
        const last = candidates[candidates.length - 1];
        if (candidates.length < wanted || last === undefined) {
          break;
        }
        cursor = last;
      }
      return found;
    },

    async copy(sourceKey, targetKey) {
      try {
        // A new name for the same file is in place whole the moment it exists: no partial file
        // and rename are needed, unless the target is taken or the content must be copied.
        const linkedSize = await linker.link(pathOf(sourceKey), pathOf(targetKey));
        if (linkedSize !== undefined) {
          // One file under two names: the target read back is the source as it was copied.
          return { source: { key: sourceKey, sizeBytes: linkedSize }, target: { key: targetKey, sizeBytes: linkedSize } };
        }
        await writeAtomically(targetKey, (partial) => shareContent(pathOf(sourceKey), partial));
      } catch (error) {
        // The source is looked at only once the copy failed (a copy made answers with its size), to
        // tell a source that is not there — or is a directory — from a failure at the target.
        // The directories made for the target stay for the caller's delete: removed here, they
        // could go from under another object of the same execution being copied beside this one.
        if ((await statFile(sourceKey)) === undefined) {
          throw new ObjectNotFoundError(sourceKey);
        }
        throw error;
      }
      const [source, target] = await Promise.all([statFile(sourceKey), statFile(targetKey)]);
      if (source === undefined) {
        throw new ObjectNotFoundError(sourceKey);
      }
      return { source, target };
    },

    async move(sourceKey, targetKey) {
      const target = pathOf(targetKey);
      try {
        await mkdir(dirname(target), { recursive: true, mode: PRIVATE_DIRECTORY });
        // One rename: readers see the object in place whole, or not yet.
        await rename(pathOf(sourceKey), target);
      } catch (error) {
        if (isMissing(error) && (await statFile(sourceKey)) === undefined) {
          await removeEmptyParents(target);
          throw new ObjectNotFoundError(sourceKey);
        }
        throw isPathConflict(error) ? new ObjectConflictError(targetKey) : error;
      }
      await removeEmptyParents(pathOf(sourceKey));
    },

    async delete(keys) {
      for (const key of keys) {
        const path = pathOf(key);
        await rm(path, { force: true });
        await removeEmptyParents(path);
      }
    },

    async write(key, source, limits) {
      const counter = new ByteLimit(limits.maxBytes);
      await writeAtomically(key, async (partial) => {
        await pipeline(source, counter, createWriteStream(partial, { flags: "wx", mode: PRIVATE_FILE }));
        if (limits.expectedBytes !== undefined && counter.bytes !== limits.expectedBytes) {
          throw new IncompleteUploadError(limits.expectedBytes, counter.bytes);
        }
        const received = counter.sha256();
        if (limits.expectedSha256 !== undefined && received !== limits.expectedSha256) {
          throw new UploadDigestMismatchError(limits.expectedSha256, received);
        }
      });
      return counter.bytes;
    },

    async put(key, content) {
      await writeAtomically(key, (partial) => writeFile(partial, content, { flag: "wx", mode: PRIVATE_FILE }));
    },

    async open(key) {
      let handle;
      try {
        handle = await open(pathOf(key), "r");
      } catch (error) {
        if (isMissing(error)) {
          return undefined;
        }
        throw error;
      }
      // Size and bytes come from the same open file, so a concurrent replace cannot mix them.
      try {
        const info = await handle.stat();
        if (info.isFile()) {
          // The stream owns the handle from here and closes it when it ends or is destroyed.
          return { sizeBytes: info.size, stream: handle.createReadStream() };
        }
      } catch (error) {
        await handle.close();
        throw error;
      }
      await handle.close();
      return undefined;
    },
  };
}

async function walkFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) {
      return [];
    }
    throw error;
  }
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      files.push(...(await walkFiles(path)));
    } else if (entry.isFile()) {
      files.push(path);
    }
  }
  return files;
}

/**
 * In order, the first `count` names of directories in `dir` that sort after `after` and pass
 * `accept`. The directory is streamed and only the best `count` names are held, so a directory
 * of a million executions costs a scan, not a million names in memory.
 */
async function firstDirectoriesAfter(
  dir: string,
  after: string,
  count: number,
  accept: (name: string) => boolean,
): Promise<string[]> {
  const kept: string[] = [];
  let entries;
  try {
    entries = await opendir(dir);
  } catch (error) {
    if (isMissing(error)) {
      return [];
    }
    throw error;
  }
  for await (const entry of entries) {
    const name = entry.name;
    const worstKept = kept[count - 1];
    if (!entry.isDirectory() || name <= after || (worstKept !== undefined && name >= worstKept) || !accept(name)) {
      continue;
    }
    let index = 0;
    for (let high = kept.length; index < high; ) {
      const middle = (index + high) >>> 1;
      if ((kept[middle] as string) < name) {
        index = middle + 1;
      } else {
        high = middle;
      }
    }
    kept.splice(index, 0, name);
    kept.length = Math.min(kept.length, count);
  }
  return kept;
}

/**
 * When the newest object under `dir` was stored, or undefined when it holds none. The inode's
 * change time, not its modification time: a copy is a hard link that shares the source's
 * modification time, but linking (like the rename that completes a write) sets the change time.
 */
async function newestChange(dir: string): Promise<Date | undefined> {
  let newestMillis: number | undefined;
  for (const path of await walkFiles(dir)) {
    if (PARTIAL_FILE_PATTERN.test(path)) {
      continue;
    }
    try {
      const { ctimeMs } = await stat(path);
      newestMillis = Math.max(newestMillis ?? ctimeMs, ctimeMs);
    } catch (error) {
      if (!isMissing(error)) {
        throw error;
      }
    }
  }
  return newestMillis === undefined ? undefined : new Date(newestMillis);
}

/** Counts and digests the bytes passing through, and stops them at the limit. */
class ByteLimit extends Transform {
  bytes = 0;
  private readonly digest = createHash("sha256");

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new ObjectTooLargeError(this.maxBytes));
      return;
    }
    this.digest.update(chunk);
    callback(null, chunk);
  }

  /** Lowercase hex SHA-256 of everything that passed; call once, after the end. */
  sha256(): string {
    return this.digest.digest("hex");
  }
}

/**
 * Gives `target` the content of `source` without reading it. Objects are immutable here — every
 * write goes to a new file that is renamed into place, never into an existing file — so a hard
 * link is a faithful copy that costs one metadata write whatever the size; deleting or
 * replacing either name leaves the other intact. Where links are impossible (another file
 * system, link limits) it falls back to a clone (reflink) where supported, else a full copy.
 */
async function shareContent(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    if (!LINK_FALLBACK_CODES.has(errorCode(error) ?? "")) {
      throw error;
    }
    await copyFile(source, target, fsConstants.COPYFILE_FICLONE);
  }
}

// Objects are people's data: only the storage-service's own user may read them, whatever the
// modes of the directories above. (A copy keeps its source's mode; a link is the same file.)
export const PRIVATE_DIRECTORY = 0o700;
export const PRIVATE_FILE = 0o600;
