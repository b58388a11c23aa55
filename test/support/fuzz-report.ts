// How a fuzz run went, in the same form for every fuzz suite: the codes answered, the answers
// no case allowed, and a printable summary (with the seed, to replay a failing run).
import type { FuzzOutcome } from "./fuzz-clients";

export interface FuzzReport<Rpc extends string> {
  /** How many answers had each code (by name). */
  codes: Record<string, number>;
  /** How many requests each RPC got over each protocol. */
  perRpc: Record<string, Record<string, number>>;
  /** The answers no case allowed. */
  unexpected: FuzzOutcome<Rpc>[];
  /** For the test's output: totals, codes, and the unexpected answers grouped, one example each. */
  summary: string;
}

export function fuzzReport<Rpc extends string>(title: string, seed: number, outcomes: readonly FuzzOutcome<Rpc>[]): FuzzReport<Rpc> {
  const codes: Record<string, number> = {};
  const perRpc: Record<string, Record<string, number>> = {};
  for (const outcome of outcomes) {
    codes[outcome.got] = (codes[outcome.got] ?? 0) + 1;
    const counts = (perRpc[outcome.rpc] ??= {});
    counts[outcome.protocol] = (counts[outcome.protocol] ?? 0) + 1;
  }
  const unexpected = outcomes.filter((outcome) => !outcome.expected.includes(outcome.got));
  const groups = new Map<string, { count: number; example: string }>();
  for (const o of unexpected) {
    const key = `${o.rpc} ${o.protocol} [${o.kind}] expected ${o.expected.join("|")} got ${o.got}`;
    const group = groups.get(key) ?? { count: 0, example: o.message };
    group.count++;
    groups.set(key, group);
  }
  const summary = [
    `${title}: seed ${seed}, ${outcomes.length} requests`,
    ...Object.entries(perRpc).map(([rpc, counts]) => `  ${rpc}: ${JSON.stringify(counts)}`),
    `  codes: ${JSON.stringify(codes)}`,
    `  unexpected: ${unexpected.length}`,
    ...[...groups].slice(0, 100).map(([key, { count, example }]) => `    ${count}x ${key}: ${example}`),
  ].join("\n");
  return { codes, perRpc, unexpected, summary };
}
