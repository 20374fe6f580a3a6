/**
 * Placement may not use Math.random: the same request must give the same answer on every broker
 * and in every replay. Everything random is drawn from the request's seed.
 */

/** FNV-1a, 32 bits, over a string's UTF-16 code units, continuing from `basis`. */
export function hashString (text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** A 32-bit seed from a request seed (strings hashed, numbers folded). */
export function seedToInt (seed: string | number): number {
  return typeof seed === 'number' ? hashString(String(seed)) : hashString(seed)
}

/** Final avalanche so that neighbouring inputs give unrelated outputs (a murmur3-style mixer). */
export function mix32 (x: number): number {
  let h = x >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

/** A seeded generator of uniform floats in [0, 1): a Weyl sequence through `mix32`. */
export function seededRandom (seed: string | number): () => number {
  let state = seedToInt(seed)
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    return mix32(state) / 0x1_0000_0000
  }
}

/** A host's place in the seeded tie order: independent of where it sits in the view. */
export function tieBreakKey (seedInt: number, hostId: string): number {
  return mix32(hashString(hostId, seedInt))
}
