// A deterministic random source for fuzz tests: the same seed gives the same requests, so a
// failure seen once can be replayed exactly by running again with that seed.

export interface SeededRandom {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
  /** `length` characters drawn from `alphabet`. */
  string(length: number, alphabet: string): string;
}

// Held here rather than looked up on Math at every call: under jest, code runs in a vm context
// whose globals sit behind an interceptor, which made each draw about a microsecond.
const { floor, imul } = Math;

/** mulberry32: tiny, fast and well distributed enough for choosing test inputs. */
export function seededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + floor(next() * (max - min + 1));
  return {
    seed,
    next,
    int,
    pick: (items) => {
      if (items.length === 0) {
        throw new Error("pick from an empty list");
      }
      return items[int(0, items.length - 1)] as (typeof items)[number];
    },
    chance: (probability) => next() < probability,
    // The same characters int(0, alphabet.length - 1) would pick, joined once: long strings
    // (64 KiB lines, thousands of ids) are drawn in every fuzz run.
    string: (length, alphabet) => {
      const characters = new Array<string>(length);
      for (let index = 0; index < length; index++) {
        characters[index] = alphabet[floor(next() * alphabet.length)] as string;
      }
      return characters.join("");
    },
  };
}
