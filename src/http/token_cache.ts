/**
 * @module
 * The bearer tokens the JWT middleware has already verified, so that a token
 * sent again skips the signature check: keyed by the exact token text and the
 * key set that verified it (another key set empties the cache), bounded in
 * size (the oldest entry goes first: a hit costs one lookup and reorders
 * nothing; a busy token evicted is verified once more), and never serving a token
 * past its `exp` plus the leeway, or, without `exp`, longer than a short TTL.
 * Only successes are kept: a token that failed is verified again each time.
 */

import type { ComputeClaims } from "../api/claims.ts";

/** Default {@linkcode TokenCacheOptions.maxEntries}. */
export const DEFAULT_TOKEN_CACHE_ENTRIES = 1024;
/** Default {@linkcode TokenCacheOptions.noExpTtlSeconds}. */
export const DEFAULT_NO_EXP_TTL_SECONDS = 60;

/** Options of {@linkcode createTokenCache}. */
export interface TokenCacheOptions {
  /** How many tokens are kept at most; past it the one stored first is dropped. */
  maxEntries?: number;
  /** How long a token without `exp` is served from the cache after it was verified, in seconds. */
  noExpTtlSeconds?: number;
  /** How far in the past `exp` may lie, in seconds: the verifier's leeway. */
  expLeewaySeconds: number;
}

/** What a successful verification tells: the claims, and `exp` when the token has one. */
export interface VerifiedToken {
  claims: ComputeClaims;
  /** Seconds since the epoch. */
  exp?: number;
}

/** Verified tokens and their claims; see the module documentation. */
export interface TokenCache {
  /**
   * The claims of `token` when `keySet` verified it and it is still valid at
   * `nowSeconds`; undefined otherwise (the token must then be verified).
   */
  get(token: string, keySet: string, nowSeconds: number): ComputeClaims | undefined;
  /** Remembers that `keySet` verified `token` at `nowSeconds`. */
  set(token: string, keySet: string, verified: VerifiedToken, nowSeconds: number): void;
  /** How many tokens are kept now. */
  readonly size: number;
}

interface Entry {
  claims: ComputeClaims;
  /** The last second (inclusive) at which the entry may be served. */
  validThrough: number;
}

/** Returns an empty {@linkcode TokenCache}. */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const {
    maxEntries = DEFAULT_TOKEN_CACHE_ENTRIES,
    noExpTtlSeconds = DEFAULT_NO_EXP_TTL_SECONDS,
    expLeewaySeconds,
  } = options;
  /** Oldest first: a `Map` iterates in insertion order. */
  const entries = new Map<string, Entry>();
  let currentKeySet: string | undefined;

  /** Another key set: nothing the previous one verified may be served. */
  function useKeySet(keySet: string): void {
    if (keySet === currentKeySet) return;
    entries.clear();
    currentKeySet = keySet;
  }

  return {
    get(token, keySet, nowSeconds) {
      useKeySet(keySet);
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      if (nowSeconds <= entry.validThrough) return entry.claims;
      entries.delete(token);
      return undefined;
    },
    set(token, keySet, { claims, exp }, nowSeconds) {
      useKeySet(keySet);
      const validThrough = exp === undefined
        ? nowSeconds + noExpTtlSeconds
        : exp + expLeewaySeconds;
      if (nowSeconds > validThrough) return;
      entries.delete(token);
      // Every request with this token gets this object: none may change it for the next.
      Object.freeze(claims.aud);
      entries.set(token, { claims: Object.freeze(claims), validThrough });
      while (entries.size > maxEntries) {
        entries.delete(entries.keys().next().value!);
      }
    },
    get size() {
      return entries.size;
    },
  };
}
