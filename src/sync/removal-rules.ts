// The contract's removal rules, as decisions: a listing vouches for removals
// only when it finished every page and is consistent, and removals over the
// guard are held unless an operator asked for them.
import type { Config } from '../config.js';
import type { ErrorKind } from '../errors.js';

export type Held = { kind: ErrorKind; message: string };

/** What the listing showed, beyond the pages themselves. */
export interface ListingFacts {
  countsSeen: Set<number>;
  finalCount: number | undefined;
}

/** Present users the listing did not show, and how many are present in all. */
export interface Candidates {
  candidates: number;
  present: number;
}

/** Why a listing cannot vouch for removals, if it cannot. */
export function heldReason(facts: ListingFacts, distinct: number): Held | undefined {
  const { finalCount, countsSeen } = facts;
  if (finalCount === undefined) {
    return { kind: 'inconsistent_listing', message: 'Tines sent no meta.count, so the listing cannot be checked for completeness; nothing was removed' };
  }
  if (countsSeen.size > 1) {
    return { kind: 'inconsistent_listing', message: `Tines' user count moved during the listing (${[...countsSeen].join(' → ')}); nothing was removed` };
  }
  if (distinct !== finalCount) {
    return { kind: 'inconsistent_listing', message: `the listing showed ${distinct} distinct users but Tines counts ${finalCount}; nothing was removed` };
  }
  return undefined;
}

/** The removal guard: more than REMOVAL_GUARD_PERCENT of present users and more than REMOVAL_GUARD_MIN are held. */
export function guardHold(cand: Candidates, rules: Config['sync'], allowMassRemoval: boolean): Held | undefined {
  const { removalGuardPercent: pct, removalGuardMin: min } = rules;
  const overGuard = cand.candidates > (cand.present * pct) / 100 && cand.candidates > min;
  if (!overGuard || allowMassRemoval) return undefined;
  return {
    kind: 'removal_guard',
    message:
      `${cand.candidates} of ${cand.present} present users are missing from Tines, over the removal guard ` +
      `(more than ${pct}% and more than ${min}); nothing was removed. If this is real, run \`tines-connector sync --allow-mass-removal\``,
  };
}
