// The credentials fuzz requests carry: mostly the right one, sometimes none, a wrong one or one
// of the wrong kind, which must be refused before anything else about the request matters.
import { Code } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import { bearer } from "./fuzz-clients";
import type { SeededRandom } from "./seeded-random";

interface CredentialledCase {
  kind: string;
  expected: readonly Code[];
}

export interface FuzzSecrets {
  apiKey: string;
  runnerToken: string;
}

/** A request over the size limit keeps its credential: it must be refused for its size. */
const keepsCredential = (hostile: CredentialledCase) => hostile.expected.includes(Code.ResourceExhausted);

/**
 * A body that cannot be decoded (a lone surrogate in JSON) is refused before the credentials are
 * looked at, so a malformed request may get InvalidArgument instead of a refusal of its caller.
 */
const undecodable = (hostile: CredentialledCase) => (hostile.expected.includes(Code.InvalidArgument) ? [Code.InvalidArgument] : []);

function refused<C extends CredentialledCase>(hostile: C, kind: string, options: CallOptions, codes: readonly Code[]) {
  return { hostile: { ...hostile, kind: `${kind} (${hostile.kind})`, expected: [...codes, ...undecodable(hostile)] }, options };
}

/** For ExecutionService: the API key, or none, an unknown or tampered key, Basic, or a runner's token. */
export function withApiKeyCredentials<C extends CredentialledCase>(
  random: SeededRandom,
  hostile: C,
  secrets: FuzzSecrets,
): { hostile: C; options: CallOptions } {
  const { apiKey } = secrets;
  if (keepsCredential(hostile)) return { hostile, options: bearer(apiKey) };
  const roll = random.next();
  const unauthenticated = [Code.Unauthenticated];
  if (roll < 0.04) return refused(hostile, "no authorization", {}, unauthenticated);
  if (roll < 0.06) return refused(hostile, "unknown key", bearer(`rgrid_${random.string(43, "ABCDEFabcdef0123456789-_")}`), unauthenticated);
  if (roll < 0.07) return refused(hostile, "tampered key", bearer(`${apiKey.slice(0, -1)}${apiKey.endsWith("A") ? "B" : "A"}`), unauthenticated);
  if (roll < 0.08) {
    return refused(hostile, "not bearer", { headers: { authorization: `Basic ${Buffer.from(`x:${apiKey}`).toString("base64")}` } }, unauthenticated);
  }
  if (roll < 0.1) {
    // A credential of the wrong kind: refused, whether as unknown or as not allowed here.
    return refused(hostile, "runner token", bearer(secrets.runnerToken), [Code.Unauthenticated, Code.PermissionDenied]);
  }
  return { hostile, options: bearer(apiKey) };
}

/** For RunnerService: the runner token, or none, an API key, or a tampered token. */
export function withRunnerCredentials<C extends CredentialledCase>(
  random: SeededRandom,
  hostile: C,
  secrets: FuzzSecrets,
): { hostile: C; options: CallOptions } {
  const { runnerToken } = secrets;
  if (keepsCredential(hostile)) return { hostile, options: bearer(runnerToken) };
  const notAllowed = [Code.Unauthenticated, Code.PermissionDenied];
  const roll = random.next();
  if (roll < 0.04) return refused(hostile, "no authorization", {}, notAllowed);
  if (roll < 0.08) return refused(hostile, "api key", bearer(secrets.apiKey), notAllowed);
  if (roll < 0.1) return refused(hostile, "tampered token", bearer(`${runnerToken.slice(0, -1)}${runnerToken.endsWith("A") ? "B" : "A"}`), notAllowed);
  return { hostile, options: bearer(runnerToken) };
}
