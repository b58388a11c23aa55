// The uids a root runner runs its slots' scripts as must be its own: two runners on one host
// sharing a uid would let one's scripts signal, trace or read the other's. Each runner claims a
// range in a registry on the host, one directory per range, named by its first uid and holding
// the claiming process's identity; a claim whose process is gone is taken over.

import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { ProcessIdentity } from "./runner-cgroup";
import { identify } from "./runner-cgroup";

/** Uids per runner: one per slot, for the largest concurrency a runner may have. */
export const UID_RANGE_SIZE = 64;

/** Shared by every runner of the host; /run is emptied at boot, when no runner is left either. */
export const UID_RANGE_REGISTRY = "/run/rgrid/uid-ranges";

/** The highest first uid of a range (uids are 32-bit; the last ones are special). */
const MAX_BASE = 2 ** 31 - UID_RANGE_SIZE;

export class UidRangeTakenError extends Error {
  constructor(base: number, owner: string) {
    super(
      `RGRID_RUNNER_SANDBOX_UID_BASE=${base}: uids ${base}-${base + UID_RANGE_SIZE - 1} are in use by another runner on this host (${owner}); ` +
        `give each runner its own base at least ${UID_RANGE_SIZE} apart, or leave it unset to pick a free range`,
    );
    this.name = "UidRangeTakenError";
  }
}

export interface UidRange {
  readonly base: number;
  /** Gives the range back; only while it is still this process's claim. */
  release(): Promise<void>;
}

export interface ClaimOptions {
  registry: string;
  preferredBase: number;
  /** The base was configured: another one would surprise whoever chose it, so refuse instead. */
  explicit: boolean;
  owner: ProcessIdentity;
}

/** Claims the preferred range, or (unless explicit) the first free one after it. */
export async function claimUidRange(options: ClaimOptions): Promise<UidRange> {
  const { registry, preferredBase, explicit, owner } = options;
  await mkdir(registry, { recursive: true, mode: 0o755 });
  for (let base = preferredBase; base <= MAX_BASE; base += UID_RANGE_SIZE) {
    const holder = liveOverlappingClaim(registry, base);
    if (holder === undefined && (await tryClaim(registry, base, owner))) {
      return { base, release: () => releaseClaim(registry, base, owner) };
    }
    if (explicit) {
      throw new UidRangeTakenError(base, holder ?? describeClaim(readClaim(registry, base)));
    }
  }
  throw new Error(`no free range of ${UID_RANGE_SIZE} uids from ${preferredBase} on`);
}

/** Writes the claim aside, then renames it into place: the rename fails if anyone was first. */
async function tryClaim(registry: string, base: number, owner: ProcessIdentity): Promise<boolean> {
  const draft = path.join(registry, `.claim-${randomBytes(6).toString("hex")}`);
  await mkdir(draft);
  await writeFile(path.join(draft, "owner"), formatOwner(owner));
  try {
    await rename(draft, path.join(registry, String(base)));
    return true;
  } catch (error) {
    await rm(draft, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") {
      throw error;
    }
    return false;
  }
}

/**
 * A description of a live claim overlapping [base, base + size), if there is one. Claims whose
 * process is gone are removed on the way.
 */
function liveOverlappingClaim(registry: string, base: number): string | undefined {
  for (const name of readdirSync(registry)) {
    const other = Number(name);
    if (!/^\d+$/.test(name) || Math.abs(other - base) >= UID_RANGE_SIZE) {
      continue;
    }
    const claim = readClaim(registry, other);
    if (claim !== undefined && isGone(claim)) {
      removeStaleClaim(registry, other);
      continue;
    }
    return describeClaim(claim);
  }
  return undefined;
}

/**
 * Renamed away before it is deleted, so that the registry never shows a half-removed claim.
 * (Two runners starting at the same moment over the same stale claim could both take its range;
 * starting runners one after the other avoids that.)
 */
function removeStaleClaim(registry: string, base: number): void {
  const doomed = path.join(registry, `.stale-${randomBytes(6).toString("hex")}`);
  try {
    renameSync(path.join(registry, String(base)), doomed);
    rmSync(doomed, { recursive: true, force: true });
  } catch {
    // another runner removed it first
  }
}

async function releaseClaim(registry: string, base: number, owner: ProcessIdentity): Promise<void> {
  const dir = path.join(registry, String(base));
  const text = await readFile(path.join(dir, "owner"), "utf8").catch(() => undefined);
  if (text === formatOwner(owner)) {
    await rm(dir, { recursive: true, force: true });
  }
}

function readClaim(registry: string, base: number): ProcessIdentity | undefined {
  try {
    const [pidNamespace, pid, startTime] = readFileSync(path.join(registry, String(base), "owner"), "utf8").trim().split(" ");
    return pidNamespace === undefined || startTime === undefined ? undefined : { pidNamespace, pid: Number(pid), startTime };
  } catch {
    return undefined;
  }
}

/** Processes of another pid namespace cannot be looked up from here: they count as alive. */
function isGone(claim: ProcessIdentity): boolean {
  const own = identify(process.pid);
  return own !== undefined && own.pidNamespace === claim.pidNamespace && identify(claim.pid)?.startTime !== claim.startTime;
}

function formatOwner(owner: ProcessIdentity): string {
  return `${owner.pidNamespace} ${owner.pid} ${owner.startTime}\n`;
}

function describeClaim(claim: ProcessIdentity | undefined): string {
  return claim === undefined ? "claimed by an unknown process" : `runner pid ${claim.pid}`;
}
