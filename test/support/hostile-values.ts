// Values that every field validator of the public API must refuse. Each generator returns only
// values that are invalid on their own, so any request carrying one is malformed.
import type { SeededRandom } from "./seeded-random";

const HEX = "0123456789abcdef";
export const hex = (random: SeededRandom, length: number) => random.string(length, HEX);

/** Comfortably over the services' 4 MiB request limit (RGRID_MAX_REQUEST_BYTES default). */
export const OVER_REQUEST_LIMIT_BYTES = 4 * 1024 * 1024 + 64 * 1024;

/** A well-formed id no execution has: NotFound, exactly like another account's. */
export const unknownExecutionId = (random: SeededRandom) => `exec_${hex(random, 32)}`;

export function malformedExecutionId(random: SeededRandom): string {
  const body = hex(random, 32);
  return random.pick([
    () => "",
    () => `run_${body}`,
    () => `EXEC_${body}`,
    () => `exec_${body.toUpperCase().replace(/[0-9]/, "A")}`,
    () => `exec_${body.slice(0, random.int(0, 31))}`,
    () => `exec_${body}${hex(random, random.int(1, 40))}`,
    () => `exec_${body.slice(0, 16)}\u0000${body.slice(16, 31)}`,
    () => `exec_${body} `,
    () => ` exec_${body}`,
    () => `exec_${body.slice(0, 31)}g`,
    () => `../exec_${body}`,
    () => `/executions/exec_${body}`,
    () => `exec_${body.slice(0, 31)}\uD800`,
    () => `exec_${"\u0661".repeat(32)}`, // Arabic-Indic digits: "digits", not hex
    () => `exec_${body}`.repeat(random.int(2, 300)),
    () => random.string(random.int(1, 2000), "abcxyz_/.\\\u0000\u0001\u00e9"),
  ])();
}

/** Names that must never become an object key or a path in a runner's working directory. */
export function malformedName(random: SeededRandom): string {
  const word = random.string(random.int(1, 12), "abcdefghij");
  return random.pick([
    () => "",
    () => "..",
    () => ".",
    () => `../${word}`,
    () => `${word}/../../etc/passwd`,
    () => `${word}/..`,
    () => `./${word}`,
    () => `${word}//${word}`,
    () => `${word}/`,
    () => `/${word}`,
    () => "/etc/passwd",
    () => `C:/${word}`,
    () => `c:${word}`,
    () => `${word}\u0000.py`,
    () => `${word}\\..\\${word}`,
    () => `${word}\\${word}`,
    () => `${word}\u0001`,
    () => `${word}\n.py`,
    () => `${word}\u007f`,
    () => `${word}\uD800.py`,
    () => `\uDC00${word}`,
    () => `${word}\uFFFD`,
    () => "n".repeat(random.int(1025, 5000)),
    () => `${"s".repeat(256)}/${word}`,
  ])();
}

export function malformedSha256(random: SeededRandom): string {
  const digest = hex(random, 64);
  return random.pick([
    () => "",
    () => digest.toUpperCase().replace(/[0-9]/, "F"),
    () => digest.slice(0, 63),
    () => `${digest}0`,
    () => `${digest.slice(0, 63)}g`,
    () => `${digest.slice(0, 32)}\u0000${digest.slice(33)}`,
    () => `sha256:${digest}`,
  ])();
}

export function malformedSize(random: SeededRandom): bigint {
  return random.pick([-1n, -(2n ** 63n), -BigInt(random.int(2, 1_000_000)), 2n ** 53n, 2n ** 63n - 1n]);
}

export function malformedRuntime(random: SeededRandom): string {
  return random.pick([
    "",
    "Python",
    "python:",
    "py thon",
    "../python",
    "/usr/bin/python3",
    "python:3.11:x",
    "p".repeat(33),
    `python:${"1".repeat(33)}`,
    "python\u0000",
    "1python",
    "node;rm -rf /",
    "python:3.11\n",
  ]);
}

export function malformedEnvKey(random: SeededRandom): string {
  return random.pick(["", "1A", "A-B", "A=B", "A B", "A\u0000", "\u00c9T\u00c9", "a.b", "PATH\n", "\uD800"]);
}

export function malformedRequestId(random: SeededRandom): string {
  return random.pick([
    "r".repeat(random.int(129, 10_000)),
    `req\u0000${hex(random, 8)}`,
    `req\n${hex(random, 8)}`,
    `req\u007f`,
    `\u001b[31mreq`,
  ]);
}

/** `--reason` texts the rule refuses: over 500 characters, or with a control character. */
export function malformedReason(random: SeededRandom): string {
  return random.pick([
    "why".repeat(random.int(167, 20_000)),
    `because\u0000${hex(random, 8)}`,
    `because\nof ${hex(random, 8)}`,
    `\u001b[2Jreason`,
    `reason\u007f`,
  ]);
}

export function malformedTimeout(random: SeededRandom, maxTimeoutSeconds: number): number {
  return random.pick([-1, -2_147_483_648, maxTimeoutSeconds + 1, 2_147_483_647, -random.int(2, 100_000)]);
}

/** Page tokens no listing ever handed out. */
export function malformedPageToken(random: SeededRandom): string {
  const b64 = (value: string) => Buffer.from(value, "utf8").toString("base64url");
  const id = `exec_${hex(random, 32)}`;
  return random.pick([
    () => random.string(random.int(1, 80), "!@#$%^&*() "),
    () => random.string(random.int(1, 200), "ABCDEFGHabcdefgh0123456789-_"),
    () => b64("null"),
    () => b64("[]"),
    () => b64("42"),
    () => b64(JSON.stringify({ c: -1, i: id })),
    () => b64(JSON.stringify({ c: 1.5, i: id })),
    () => b64(JSON.stringify({ c: "1700000000000", i: id })),
    () => b64(JSON.stringify({ c: 1_700_000_000_000, i: "x" })),
    () => b64(JSON.stringify({ c: 1_700_000_000_000, i: id.toUpperCase() })),
    () => b64(JSON.stringify({ c: 2 ** 60, i: id })),
    () => b64(JSON.stringify({ i: id })),
    () => `${b64(JSON.stringify({ c: 1, i: id }))}\u0000`,
    () => "t".repeat(random.int(10_000, 100_000)),
    () => "\uD800",
  ])();
}

/** Batch ids that fail validation: "batch_" and 32 lowercase hex characters is the only form. */
export function malformedBatchId(random: SeededRandom): string {
  const body = hex(random, 32);
  return random.pick([
    () => "",
    () => `exec_${body}`,
    () => `BATCH_${body}`,
    () => `batch_${body.slice(0, random.int(0, 31))}`,
    () => `batch_${body}0`,
    () => `batch_${body.slice(0, 31)}G`,
    () => `batch_${body.slice(0, 16)}\u0000${body.slice(17)}`,
    () => `../batch_${body}`,
    () => `batch_${body}`.repeat(random.int(2, 100)),
    () => random.string(random.int(1, 500), "abc_/.\\\u0000\u00e9"),
  ])();
}
