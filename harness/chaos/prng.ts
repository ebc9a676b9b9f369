/**
 * @module
 * A small seeded pseudo-random generator (mulberry32) for the chaos loop: the
 * same seed gives the same sequence on every machine, so a run can be replayed
 * from the seed it printed. Not for anything that needs unpredictability.
 */

/** Draws from one seeded sequence. */
export interface Prng {
  /** The next number in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** One of `items` (which must not be empty). */
  pick<T>(items: readonly T[]): T;
  /** One of the entries' values, each with the chance `weight / sum of weights`. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T;
}

/** A generator seeded with the low 32 bits of `seed`. */
export function mulberry32(seed: number): Prng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick(items) {
      if (items.length === 0) throw new RangeError("pick from an empty list");
      return items[int(0, items.length - 1)];
    },
    weighted(entries) {
      const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
      if (!(total > 0)) throw new RangeError("weighted pick needs a positive total weight");
      let draw = next() * total;
      for (const [value, weight] of entries) {
        draw -= weight;
        if (draw < 0) return value;
      }
      return entries[entries.length - 1][0];
    },
  };
}
