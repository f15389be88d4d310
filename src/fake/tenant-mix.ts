// Many tenants for one fake Tines (the fleet benchmark): how many users each
// has, from a fixed seed, and the API key that tells it apart. The mix is the
// fleet issue's: about 1% of tenants with 20k users, 9% with 1k–5k and the rest
// with 20–200. The class counts are exact proportions (rounded), so a small run
// still has its large tenants; which index gets which class, and each size
// within its range, are drawn from the seed.
import { mulberry32 } from './tines-server.js';

export interface TenantSpec {
  /** Its index, 0-based: the benchmark names the tenant's connector after it. */
  index: number;
  /** The API key that selects this tenant on the fake. */
  key: string;
  users: number;
}

export const HUGE_TENANT_USERS = 20_000;
export const LARGE_TENANT_USERS = [1_000, 5_000] as const;
export const SMALL_TENANT_USERS = [20, 200] as const;

/** The key of tenant `index`: derived from the index only, so any process can name it. */
export function tenantKey(index: number): string {
  return `fleet-tenant-${index}`;
}

export function tenantMix(count: number, seed: number): TenantSpec[] {
  const rand = mulberry32(seed * 2_654_435_761 + 17);
  const between = ([lo, hi]: readonly [number, number]) => lo + Math.floor(rand() * (hi - lo + 1));
  const huge = Math.round(count * 0.01);
  const large = Math.min(count - huge, Math.round(count * 0.09));
  const classes: ('huge' | 'large' | 'small')[] = Array.from({ length: count }, (_, i) => (i < huge ? 'huge' : i < huge + large ? 'large' : 'small'));
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [classes[i], classes[j]] = [classes[j]!, classes[i]!];
  }
  return classes.map((c, index) => ({
    index,
    key: tenantKey(index),
    users: c === 'huge' ? HUGE_TENANT_USERS : between(c === 'large' ? LARGE_TENANT_USERS : SMALL_TENANT_USERS),
  }));
}
