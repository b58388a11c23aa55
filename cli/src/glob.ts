// The file patterns of `rgrid run --batch`, matched by tinyglobby (picomatch syntax): `*` and `?`
// within one path segment, `**` for any number of directories, `{a,b}` and `[ab]`, `\` to take a
// special character literally, and a directory standing for every file below it.
import { isAbsolute } from "node:path";
import { glob } from "tinyglobby";

/**
 * The regular files matching `pattern` ('/'-separated, relative to `cwd` unless absolute), sorted,
 * as paths relative to `cwd` (absolute when the pattern is). Like a shell, wildcards do not match
 * names starting with '.' unless the pattern segment does, and `**` does not enter such directories.
 */
export async function expandGlob(pattern: string, cwd: string): Promise<string[]> {
  const files = await glob(pattern, {
    cwd,
    absolute: isAbsolute(pattern),
    onlyFiles: true,
    expandDirectories: true,
    // A link back up the tree would never end; links to files still match.
    followSymbolicLinks: false,
  });
  return files.sort();
}
