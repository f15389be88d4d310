// A connector's first sync on the PostgreSQL server. Every listed user is new,
// so each page goes straight into tines_users, team_memberships and
// change_events with COPY, inside the run's transaction, while the next page is
// fetched: no staging copy, no diff. A user the listing shows a second time
// (paging shifted under it) is staged instead; at the end its first sighting
// is taken back and the diff adds it from the latest, so the run records what
// staging would have (one user_added, with the latest values).
import type { Session } from '../db/database.js';
import { CopyBuffer, escapeCopy } from '../db/database.js';
import type { TinesUser } from '../tines/schema.js';
import { BASELINE_DETAILS_JSON } from './diff.js';
import {
  emailOf,
  finalizeStaging,
  type ListedPage,
  membershipRow,
  MEMBERSHIP_ROW_COLUMNS,
  normalise,
  pageKey,
  sighting,
  STAGE_PAGES,
  STAGE_SEEN,
  STAGE_USERS,
  stageUsers,
  userRow,
  USER_ROW_COLUMNS,
  type RawSighting,
} from './staging.js';

const USER_COLUMNS = ['connector_id', ...USER_ROW_COLUMNS] as const;
const MEMBERSHIP_COLUMNS = ['connector_id', ...MEMBERSHIP_ROW_COLUMNS] as const;
const EVENT_COLUMNS = ['connector_id', 'sync_run_id', 'kind', 'tines_user_id', 'email', 'team_id', 'details'] as const;
const PAGE_COLUMNS = ['page', 'digest', 'known', 'seq_start', 'ids', 'meta'] as const;

/**
 * Pages are written in batches of about this many users: each COPY costs two
 * round trips and waits for this thread, so small ones leave the server idle
 * (measured at 100k users: 500 per COPY spent 22 ms a page in COPY, against
 * 10 ms for the same rows sent by psql).
 */
const BATCH_USERS = 2000;

/**
 * Pages encoded for COPY, ready to write. Per user only its id, its place in
 * the listing and where its lines end are kept (numbers, nothing for the
 * collector to trace), so a batch can be cut again in the rare case it holds
 * a user already listed.
 */
export interface LoadBatch {
  ids: number[];
  seqs: number[];
  /** Byte offsets where each user's lines end in users, memberships and events. */
  ends: number[];
  users: CopyBuffer;
  memberships: CopyBuffer;
  events: CopyBuffer;
  pages: CopyBuffer;
}

export class FirstLoad {
  /** Users inserted (distinct ids listed) and memberships inserted so far. */
  usersAdded = 0;
  membershipsAdded = 0;
  /** Sightings of a user already listed. */
  repeats = 0;
  private pending: LoadBatch = emptyBatch();

  constructor(
    private readonly s: Session,
    private readonly connectorId: number,
    private readonly runId: number,
  ) {}

  /** Distinct users listed so far. */
  get distinct(): number {
    return this.usersAdded;
  }

  /**
   * The CPU half: validates, normalises and encodes one page (done while the
   * database writes the previous batch). Returns the batch to write once it is
   * large enough, else null.
   */
  async add(page: ListedPage, seqStart: number): Promise<LoadBatch | null> {
    const b = this.pending;
    for (let i = 0; i < page.raw.length; i++) {
      // Short slices: the COPY in flight needs this thread to answer the server promptly.
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToIo();
      const x = sighting(page.raw[i]!);
      const u = normalise(x);
      this.encode(x, u, b);
      b.ids.push(u.id);
      b.seqs.push(seqStart + i);
      b.ends.push(b.users.byteLength, b.memberships.byteLength, b.events.byteLength);
    }
    if (page.digest !== undefined) {
      b.pages.push(`${page.page}\t${pageKey(page.digest)}\tf\t${seqStart}\t{${page.ids.join(',')}}\t${escapeCopy(JSON.stringify(page.meta))}\n`);
    }
    return b.ids.length >= BATCH_USERS ? this.take() : null;
  }

  /** A user's row, its user_added event, its memberships and their membership_added events. */
  private encode(x: RawSighting, u: TinesUser, b: LoadBatch): void {
    const c = this.connectorId;
    const run = this.runId;
    const email = emailOf(u);
    b.users.push(`${c}\t${userRow(u, x)}\n`);
    // A first load is the connector's first sync: its arrivals are the baseline.
    b.events.push(`${c}\t${run}\tuser_added\t${u.id}\t${email}\t\\N\t${BASELINE_DETAILS_JSON}\n`);
    for (const m of u.memberships ?? []) {
      b.memberships.push(`${c}\t${membershipRow(u, m)}\n`);
      b.events.push(
        `${c}\t${run}\tmembership_added\t${u.id}\t${email}\t${m.teamId}\t${escapeCopy(JSON.stringify({ team_name: m.teamName, role: m.role, baseline: true }))}\n`,
      );
    }
  }

  /** What is buffered and not written yet. */
  take(): LoadBatch {
    const b = this.pending;
    this.pending = this.spare.pop() ?? emptyBatch();
    return b;
  }

  /**
   * Written batches, their buffers kept for the next ones: two or three are
   * enough, and fresh megabytes for every batch cost page faults and
   * collections (the server has every byte once its COPY completes).
   */
  private readonly spare: LoadBatch[] = [];

  private recycle(b: LoadBatch): void {
    b.ids.length = 0;
    b.seqs.length = 0;
    b.ends.length = 0;
    for (const buf of [b.users, b.memberships, b.events, b.pages]) buf.reset();
    this.spare.push(b);
  }

  /** The highest id written so far: an id above every earlier one cannot be a repeat. */
  private maxId = -Infinity;

  /**
   * The database half. A user listed before is staged for the diff instead of
   * inserted twice. Only an id not above every id before it can be a repeat,
   * so nothing is asked while ids strictly increase (the usual listing,
   * though Tines documents no order). Otherwise
   * tines_users itself says which were written by earlier batches (nothing
   * here grows with the tenant).
   */
  async write(b: LoadBatch): Promise<void> {
    const { s } = this;
    const suspects: number[] = [];
    for (const id of b.ids) {
      if (id <= this.maxId) suspects.push(id);
      else this.maxId = id;
    }
    if (suspects.length > 0) {
      const r = await s.query<{ id: string }>(
        'SELECT tines_user_id::text AS id FROM tines_users WHERE connector_id = $1 AND tines_user_id = ANY($2::bigint[])',
        [this.connectorId, suspects],
      );
      const written = new Set(r.rows.map((row) => Number(row.id)));
      const fresh = new Set(b.ids.filter((id) => !written.has(id)));
      if (fresh.size < b.ids.length) b = this.withoutRepeats(b, fresh);
    }
    this.usersAdded += b.ids.length;
    this.membershipsAdded += countLines(b.memberships.bytes());
    await s.copyText('tines_users', USER_COLUMNS, b.users.bytes());
    await s.copyText('team_memberships', MEMBERSHIP_COLUMNS, b.memberships.bytes());
    await s.copyText('change_events', EVENT_COLUMNS, b.events.bytes());
    await s.copyText(STAGE_PAGES, PAGE_COLUMNS, b.pages.bytes());
    this.recycle(b);
  }

  /**
   * The batch cut down to the first sighting of each new id (rare: paging
   * shifted under the listing). A later sighting is read back from its row's
   * raw column and staged for the diff at the end.
   */
  private withoutRepeats(b: LoadBatch, fresh: Set<number>): LoadBatch {
    const kept = emptyBatch();
    kept.pages = b.pages;
    const [users, memberships, events] = [b.users.bytes(), b.memberships.bytes(), b.events.bytes()];
    let from = [0, 0, 0];
    for (let i = 0; i < b.ids.length; i++) {
      const to = [b.ends[3 * i]!, b.ends[3 * i + 1]!, b.ends[3 * i + 2]!];
      if (fresh.delete(b.ids[i]!)) {
        kept.users.pushBytes(users.subarray(from[0], to[0]));
        kept.memberships.pushBytes(memberships.subarray(from[1], to[1]));
        kept.events.pushBytes(events.subarray(from[2], to[2]));
        kept.ids.push(b.ids[i]!);
        kept.seqs.push(b.seqs[i]!);
      } else {
        const line = Buffer.from(users.subarray(from[0], to[0])).toString('utf8');
        const raw = JSON.parse(unescapeCopy(line.slice(0, -1).split('\t')[USER_COLUMNS.indexOf('raw')]!)) as Record<string, unknown>;
        this.repeated.push({ sighting: sighting(raw), seq: b.seqs[i]! });
        this.repeats++;
      }
      from = to;
    }
    return kept;
  }

  /** Later sightings of users already inserted, for the diff at the end. */
  private readonly repeated: { sighting: RawSighting; seq: number }[] = [];

  /**
   * A user listed twice ends as its latest sighting, exactly as staging would
   * have it: the later sightings are staged (one per user after
   * finalizeStaging) and the first one, inserted by this run, is taken back,
   * rows and events, so the diff adds the user afresh. Returns what was taken back.
   */
  async withdrawRepeated(): Promise<{ users: number; memberships: number }> {
    if (this.repeated.length === 0) return { users: 0, memberships: 0 };
    const { s } = this;
    await s.copyText(STAGE_SEEN, ['tines_user_id', 'seq'], this.repeated.map((a) => `${String(a.sighting.raw.id)}\t${a.seq}\n`).join(''));
    await stageUsers(s, this.repeated);
    await finalizeStaging(s);
    const r = await s.query<{ users: number; memberships: number }>(
      `WITH ids AS (SELECT tines_user_id FROM ${STAGE_USERS}),
            ev AS (DELETE FROM change_events e USING ids
                    WHERE e.connector_id = $1 AND e.sync_run_id = $2 AND e.tines_user_id = ids.tines_user_id),
            m AS (DELETE FROM team_memberships t USING ids
                   WHERE t.connector_id = $1 AND t.tines_user_id = ids.tines_user_id RETURNING 1),
            u AS (DELETE FROM tines_users x USING ids
                   WHERE x.connector_id = $1 AND x.tines_user_id = ids.tines_user_id RETURNING 1)
       SELECT (SELECT count(*) FROM u)::int AS users, (SELECT count(*) FROM m)::int AS memberships`,
      [this.connectorId, this.runId],
    );
    return r.rows[0]!;
  }
}

const YIELD_EVERY = 100;
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

function emptyBatch(): LoadBatch {
  return { ids: [], seqs: [], ends: [], users: new CopyBuffer(), memberships: new CopyBuffer(256 * 1024), events: new CopyBuffer(), pages: new CopyBuffer(64 * 1024) };
}

function countLines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}

/** The inverse of escapeCopy for one column of a line this module wrote. */
function unescapeCopy(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}
