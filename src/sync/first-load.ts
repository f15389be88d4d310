// A connector's first sync on the PostgreSQL server. Every listed user is new,
// so each page goes straight into tines_users, team_memberships and
// change_events with COPY, inside the run's transaction, while the next page is
// fetched: no staging copy, no diff. A user the listing shows a second time
// (paging shifted under it) is staged instead, and the diff applies that
// sighting over the first one at the end, so the latest sighting wins.
import type { Session } from '../db/database.js';
import { copyValue, CopyBuffer, escapeCopy } from '../db/database.js';
import { TinesRequestError } from '../errors.js';
import { toTinesUser } from '../tines/schema.js';
import { pageKey, sighting, STAGE_PAGES, STAGE_SEEN, stageUsers, type RawSighting } from './staging.js';

const USER_COLUMNS = [
  'connector_id',
  'tines_user_id',
  'email',
  'first_name',
  'last_name',
  'admin',
  'is_active',
  'tenant_permissions',
  'scim_uid',
  'tines_created_at',
  'tines_updated_at',
  'last_seen_at',
  'raw',
  'raw_hash',
] as const;
const MEMBERSHIP_COLUMNS = ['connector_id', 'tines_user_id', 'team_id', 'team_name', 'role'] as const;
const EVENT_COLUMNS = ['connector_id', 'sync_run_id', 'kind', 'tines_user_id', 'email', 'team_id', 'details'] as const;
const PAGE_COLUMNS = ['page', 'digest', 'known', 'seq_start', 'ids', 'meta'] as const;

/**
 * Pages are written in batches of about this many users: each COPY costs two
 * round trips and waits for this thread, so small ones leave the server idle
 * (measured at 100k users: 500 per COPY spent 22 ms a page in COPY, against
 * 10 ms for the same rows sent by psql).
 */
const BATCH_USERS = 2000;

/** Pages encoded for COPY, ready to write. */
export interface LoadBatch {
  users: CopyBuffer;
  memberships: CopyBuffer;
  events: CopyBuffer;
  /** Second sightings: staged for the diff, with their position in the listing. */
  again: { sighting: RawSighting; seq: number }[];
}

export class FirstLoad {
  /** Every id listed so far: a second sighting must not be inserted twice. */
  private readonly seen = new Set<number>();
  usersAdded = 0;
  membershipsAdded = 0;
  /** Sightings of a user already listed. */
  repeats = 0;
  private pending: LoadBatch = emptyBatch();
  private pendingUsers = 0;
  /** Every page of the listing, for listing_pages. */
  private readonly pages = new CopyBuffer(64 * 1024);

  constructor(
    private readonly s: Session,
    private readonly connectorId: number,
    private readonly runId: number,
  ) {}

  /** Distinct users listed so far. */
  get distinct(): number {
    return this.seen.size;
  }

  /**
   * The CPU half: validates, normalises and encodes one page (done while the
   * database writes the previous batch). Returns the batch to write once it is
   * large enough, else null.
   */
  async add(
    page: { page: number; ids: readonly number[]; raw: readonly Record<string, unknown>[]; digest?: string; meta: unknown },
    seqStart: number,
  ): Promise<LoadBatch | null> {
    const c = this.connectorId;
    const run = this.runId;
    const { users, memberships, events, again } = this.pending;
    for (let i = 0; i < page.raw.length; i++) {
      // Short slices: the COPY in flight needs this thread to answer the server promptly.
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToIo();
      const x = sighting(page.raw[i]!);
      const u = toTinesUser(x.raw);
      if (typeof u === 'string') throw new TinesRequestError('invalid_response', `user ${String(x.raw.id)}: ${u}`);
      if (this.seen.has(u.id)) {
        again.push({ sighting: x, seq: seqStart + i });
        this.repeats++;
        continue;
      }
      this.seen.add(u.id);
      this.usersAdded++;
      const email = copyValue(u.email);
      users.push(
        `${c}\t${u.id}\t${email}\t${copyValue(u.firstName)}\t${copyValue(u.lastName)}\t` +
        `${copyValue(u.admin)}\t${copyValue(u.isActive)}\t${copyValue(u.tenantPermissions)}\t${copyValue(u.scimUid)}\t` +
        `${copyValue(u.createdAt)}\t${copyValue(u.updatedAt)}\t${copyValue(u.lastSeen)}\t${escapeCopy(x.json)}\t${x.digest}\n`,
      );
      events.push(`${c}\t${run}\tuser_added\t${u.id}\t${email}\t\\N\t{}\n`);
      for (const m of u.memberships ?? []) {
        this.membershipsAdded++;
        memberships.push(`${c}\t${u.id}\t${m.teamId}\t${copyValue(m.teamName)}\t${copyValue(m.role)}\n`);
        events.push(
          `${c}\t${run}\tmembership_added\t${u.id}\t${email}\t${m.teamId}\t${escapeCopy(JSON.stringify({ team_name: m.teamName, role: m.role }))}\n`,
        );
      }
    }
    // Pages are written once, at the end: one statement instead of one per batch.
    if (page.digest !== undefined) {
      this.pages.push(`${page.page}\t${pageKey(page.digest)}\tf\t${seqStart}\t{${page.ids.join(',')}}\t${escapeCopy(JSON.stringify(page.meta))}\n`);
    }
    this.pendingUsers += page.raw.length;
    return this.pendingUsers >= BATCH_USERS ? this.take() : null;
  }

  /** The listing's pages, once it is over. */
  async writePages(): Promise<void> {
    await this.s.copyText(STAGE_PAGES, PAGE_COLUMNS, this.pages.bytes());
  }

  /** What is buffered and not written yet. */
  take(): LoadBatch {
    const b = this.pending;
    this.pending = emptyBatch();
    this.pendingUsers = 0;
    return b;
  }

  /** The database half. */
  async write(b: LoadBatch): Promise<void> {
    const { s } = this;
    await s.copyText('tines_users', USER_COLUMNS, b.users.bytes());
    await s.copyText('team_memberships', MEMBERSHIP_COLUMNS, b.memberships.bytes());
    await s.copyText('change_events', EVENT_COLUMNS, b.events.bytes());
    if (b.again.length > 0) {
      await s.copyText(STAGE_SEEN, ['tines_user_id', 'seq'], b.again.map((a) => `${String(a.sighting.raw.id)}\t${a.seq}\n`).join(''));
      await stageUsers(s, b.again);
    }
  }
}

const YIELD_EVERY = 100;
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

function emptyBatch(): LoadBatch {
  return { users: new CopyBuffer(), memberships: new CopyBuffer(256 * 1024), events: new CopyBuffer(), again: [] };
}
