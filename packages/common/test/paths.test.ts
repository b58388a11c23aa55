import { relativePathProblem } from "../src/paths";

test.each(["input.json", "data/in.json", "a/b/c.txt", "ünïcødé.csv", ".hidden", "name with spaces.txt"])(
  "%s is a safe relative path",
  (name) => expect(relativePathProblem(name)).toBeUndefined(),
);

test.each([
  ["", "empty"],
  ["../etc/passwd", "'..'"],
  ["data/../../x", "'..'"],
  ["/etc/passwd", "relative"],
  ["C:/x", "relative"],
  ["a\u0000b", "NUL"],
  ["a\\b", "separator"],
  ["a//b", "empty"],
  ["a/", "empty"],
  ["./a", "'.'"],
  ["line\nbreak", "control"],
  ["x".repeat(256), "segments"],
  [`${"a/".repeat(600)}b`, "bytes"],
  ["\uD800", "UTF-8"],
])("%j is refused (%s)", (name, reason) => {
  expect(relativePathProblem(name)).toContain(reason);
});
