// The file patterns of `rgrid run --batch`: `*` and `?` within one path segment, `**` for any
// number of directories, and a directory standing for every file below it. Node 20 has no
// fs.glob, and a handful of rules does not need a package.
import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";

/**
 * The regular files matching `pattern` ('/'-separated, relative to `cwd` unless absolute), sorted,
 * as paths relative to `cwd` (absolute when the pattern is). Like a shell, wildcards do not match
 * names starting with '.' unless the pattern segment does, and `**` does not enter such directories.
 */
export async function expandGlob(pattern: string, cwd: string): Promise<string[]> {
  const absolute = isAbsolute(pattern);
  const segments = pattern.split("/").filter((segment) => segment !== "");
  const found = new Set<string>();
  await matchSegments(absolute ? "/" : cwd, segments, 0, found);
  const display = (path: string): string => (absolute ? path : relative(cwd, path).split(sep).join("/"));
  return [...found].map(display).sort();
}

/** Whether `name` matches one pattern segment (no '/'): `*` any run of characters, `?` one. */
export function matchesSegment(segment: string, name: string): boolean {
  if (name.startsWith(".") && !segment.startsWith(".")) {
    return false;
  }
  return segmentPattern(segment).test(name);
}

function segmentPattern(segment: string): RegExp {
  const source = [...segment]
    .map((char) => (char === "*" ? "[^/]*" : char === "?" ? "[^/]" : char.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`, "s");
}

function hasWildcard(segment: string): boolean {
  return /[*?]/.test(segment);
}

async function matchSegments(directory: string, segments: readonly string[], index: number, found: Set<string>): Promise<void> {
  if (index === segments.length) {
    // The whole pattern named this directory: it stands for every file below it.
    await addFilesBelow(directory, found);
    return;
  }
  const segment = segments[index] as string;
  const isLast = index === segments.length - 1;

  if (segment === "**") {
    if (isLast) {
      await addFilesBelow(directory, found);
      return;
    }
    // Zero directories here, or one more and `**` again.
    await matchSegments(directory, segments, index + 1, found);
    for (const entry of await listDirectory(directory)) {
      if (entry.isDirectory() && !entry.name.startsWith(".")) {
        await matchSegments(join(directory, entry.name), segments, index, found);
      }
    }
    return;
  }

  const names = hasWildcard(segment)
    ? (await listDirectory(directory)).map((entry) => entry.name).filter((name) => matchesSegment(segment, name))
    : [segment];
  for (const name of names) {
    const path = join(directory, name);
    const kind = await kindOf(path);
    if (kind === "file" && isLast) {
      found.add(path);
    } else if (kind === "directory" && (!isLast || !hasWildcard(segment))) {
      // A wildcard's last segment picks files; a directory it happens to match is not meant.
      await matchSegments(path, segments, index + 1, found);
    }
  }
}

async function addFilesBelow(directory: string, found: Set<string>): Promise<void> {
  for (const entry of await listDirectory(directory)) {
    if (entry.name.startsWith(".")) {
      continue;
    }
    const path = join(directory, entry.name);
    // Symbolic links to directories are not entered: a link loop would never end.
    if (entry.isDirectory()) {
      await addFilesBelow(path, found);
    } else if ((await kindOf(path)) === "file") {
      found.add(path);
    }
  }
}

async function listDirectory(directory: string): Promise<Dirent[]> {
  try {
    return await readdir(directory, { withFileTypes: true });
  } catch {
    // Missing or unreadable: nothing in it matches, as in a shell.
    return [];
  }
}

async function kindOf(path: string): Promise<"file" | "directory" | "other"> {
  try {
    const stats = await stat(path);
    return stats.isFile() ? "file" : stats.isDirectory() ? "directory" : "other";
  } catch {
    return "other";
  }
}
