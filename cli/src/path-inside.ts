// Its own module so that commands which only download (and never plan inputs) can use it.
import { isAbsolute, relative, sep } from "node:path";

/** The '/'-separated path of `target` below `directory`, or undefined when it is not below it. */
export function pathInside(directory: string, target: string): string | undefined {
  const path = relative(directory, target);
  if (path === "" || isAbsolute(path) || path === ".." || path.startsWith(`..${sep}`)) {
    return undefined;
  }
  return path.split(sep).join("/");
}
