import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startFakeWebhookReceiver, type AppliedDelivery, type DeliveryStage, type Identifiers } from '../fakes/webhook-receiver.js';
import { Random } from '../support/hostile-inputs.js';
import { AddAudienceMembers, RemoveAudienceMembers, UpdateAudienceSync } from '../support/operations.js';
import { createAudienceWith, createDestinationWith, createSync, dataOf, expectType, sha256 } from '../support/scenario.js';
import { readRun, triggerSync, waitForRunEnd } from '../support/sync-runs.js';
import { waitFor } from '../support/wait.js';
import { useWorkerProcessSuite } from '../support/worker-processes.js';

/**
 * Seeded crash trials with real worker processes. Each trial syncs an audience to a signed webhook
 * receiver in one mode, changes the audience, and kills the worker (SIGKILL) at a point of the next
 * run: as a batch of adds or removals reaches the receiver (before it is applied, once applied but
 * unanswered, or just answered, racing the commit), or in the middle of the diff. While no worker
 * runs, members leave, join, rejoin and change identifiers; then another worker resumes the run.
 * After it, the destination must hold exactly what the gateway recorded, and what the mode promises
 * of the audience; the run's counts must be those of the batches it had confirmed; a further run
 * must find nothing to do; and the runs that had finished must be unchanged.
 *
 * `CRASH_SEED=<n>` replays a series, `CRASH_TRIALS=<n>` sets its length (`npm run chaos -- --trials N`).
 */
const SEED = Number(process.env.CRASH_SEED ?? 20_261_206);
const TRIALS = Number(process.env.CRASH_TRIALS ?? 6);
const SECRET = 'whsec-chaos-0123456789abcdef0123456789abcd';
const BATCH_SIZE = 250;
const INITIAL_MEMBERS = 1_500;

// The trials poll their runs often (every 50 ms), more than a key's default rate limit allows over several trials.
// DIFF_SPLIT_SPAN: every diff of these syncs (30,000 members) is taken in two halves at once, as a
// large sync's is, so that kills land in a split diff too.
const suite = useWorkerProcessSuite({
  PLATFORM_RETRY_MIN_MS: '20',
  ALLOW_PRIVATE_WEBHOOK_URLS: 'true',
  RATE_LIMIT_POINTS: '0',
  DIFF_SPLIT_SPAN: '1000',
});

type Mode = 'MIRROR' | 'ADD' | 'UPSERT' | 'REMOVE';
type KillPoint =
  | { at: 'diff' }
  | { at: DeliveryStage; side: AppliedDelivery['type']; nth: number };

const MODES: Mode[] = ['MIRROR', 'ADD', 'UPSERT', 'REMOVE'];
const STAGES: DeliveryStage[] = ['received', 'applied', 'answered'];
const ADDED = 'audience.members.added';
const REMOVED = 'audience.members.removed';

const memberKey = (identifiers: Identifiers) => JSON.stringify(Object.entries(identifiers).sort());

/** The audience as the test knows it: members by external id, and each contact's current email. */
class AudienceModel {
  readonly members = new Set<string>();
  readonly everMembers = new Set<string>();
  readonly emails = new Map<string, string>();
  private created = 0;

  constructor(
    private readonly audienceId: string,
    private readonly prefix: string,
  ) {}

  newContacts(count: number): string[] {
    return Array.from({ length: count }, () => `${this.prefix}-${this.created++}`);
  }

  identifiersOf(externalId: string): Identifiers {
    return { EXTERNAL_ID: externalId, EMAIL_SHA256: sha256(this.emails.get(externalId)!) };
  }

  /** Adds members (new ones, or ones who left), or gives current members a new email. */
  async add(externalIds: string[], options: { newEmail?: boolean } = {}) {
    for (let start = 0; start < externalIds.length; start += 5_000) {
      const chunk = externalIds.slice(start, start + 5_000);
      for (const id of chunk) {
        if (options.newEmail || !this.emails.has(id)) this.emails.set(id, `${id}.${this.created++}@example.com`);
      }
      const members = chunk.map((externalId) => ({ externalId, email: this.emails.get(externalId)! }));
      const result = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: this.audienceId, members }));
      const expected = chunk.filter((id) => !this.members.has(id)).length;
      expect(expectType(result.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(expected);
      for (const id of chunk) {
        this.members.add(id);
        this.everMembers.add(id);
      }
    }
  }

  async remove(externalIds: string[]) {
    if (externalIds.length === 0) return;
    const members = externalIds.map((externalId) => ({ externalId }));
    const result = dataOf(await suite.gateway.execute(RemoveAudienceMembers, { audienceId: this.audienceId, members }));
    expect(expectType(result.removeAudienceMembers, 'RemoveAudienceMembersSuccess').removed).toBe(externalIds.length);
    for (const id of externalIds) this.members.delete(id);
  }
}

/** Draws `count` distinct values (or all, if fewer). */
function sample<T>(random: Random, values: Iterable<T>, count: number): T[] {
  const pool = [...values];
  const drawn: T[] = [];
  while (drawn.length < count && pool.length > 0) drawn.push(pool.splice(random.int(pool.length), 1)[0]!);
  return drawn;
}

interface RecordedMember {
  externalId: string;
  identifiers: Identifiers;
  /** The action of its batch while in doubt; null once confirmed. */
  inDoubt: string | null;
}

async function recordedMembers(syncUuid: string): Promise<RecordedMember[]> {
  const rows = await db().$queryRaw<{ external_id: string; identifiers: Identifiers; action: string | null }[]>`
    SELECT c.external_id, s.identifiers, b.action
    FROM synced_member s JOIN contact c ON c.id = s.contact_id LEFT JOIN batch_in_doubt b ON b.id = s.batch_id
    WHERE s.sync_id = ${syncUuid}::uuid`;
  return rows.map((row) => ({ externalId: row.external_id, identifiers: row.identifiers, inDoubt: row.action }));
}

function drawKillPoint(random: Random, mode: Mode, adds: number, removes: number): KillPoint {
  const sides: AppliedDelivery['type'][] = [];
  if (mode !== 'REMOVE' && adds > 0) sides.push(ADDED);
  if ((mode === 'MIRROR' || mode === 'REMOVE') && removes > 0) sides.push(REMOVED);
  if (sides.length === 0 || random.chance(0.15)) return { at: 'diff' };
  const side = random.pick(sides);
  const batches = Math.ceil((side === ADDED ? adds : removes) / BATCH_SIZE);
  return { at: random.pick(STAGES), side, nth: 1 + random.int(batches) };
}

const trials = Array.from({ length: TRIALS }, (_, i) => ({ trial: i, seed: SEED + i }));

test.each(trials)('crash trial $trial (CRASH_SEED=$seed replays it from here)', async ({ seed }) => {
  const random = new Random(seed);
  const mode = MODES[(seed >>> 0) % MODES.length]!;
  const receiver = await startFakeWebhookReceiver({ signingSecret: SECRET });
  const steady = suite.startWorker();
  let doomed = steady;
  let rescuer = steady;
  try {
    const destination = await createDestinationWith(suite.gateway, {
      name: `chaos ${seed}`,
      config: { webhook: { url: receiver.url, batchSize: BATCH_SIZE } },
      credentials: { webhook: { signingSecret: SECRET } },
    });
    const created = await createAudienceWith(suite.gateway, []);
    const audience = new AudienceModel(created.id, `s${seed}`);
    const sync = await createSync(suite.gateway, {
      audienceId: created.id,
      destinationId: destination.id,
      mode: mode === 'REMOVE' ? 'MIRROR' : mode,
      fieldMapping: [
        { sourceField: 'externalId', destinationField: 'EXTERNAL_ID' },
        { sourceField: 'email', destinationField: 'EMAIL_SHA256' },
      ],
    });
    const syncUuid = decodeGlobalID(sync.id).id;

    await audience.add(audience.newContacts(INITIAL_MEMBERS));
    const first = await runToEnd(sync.id);
    expect(first, steady.output().slice(-3_000)).toMatchObject({ status: 'SUCCEEDED', membersAdded: INITIAL_MEMBERS });
    if (mode === 'REMOVE') {
      const updated = dataOf(await suite.gateway.execute(UpdateAudienceSync, { id: sync.id, input: { mode: 'REMOVE' } }));
      expectType(updated.updateAudienceSync, 'UpdateAudienceSyncSuccess');
    }
    const finishedRun = await db().syncRun.findUniqueOrThrow({ where: { id: decodeGlobalID(first.id).id } });

    // The changes the run to crash sends: leavers, joiners, and (UPSERT) new identifiers.
    const leaving = sample(random, audience.members, 200 + random.int(400));
    await audience.remove(leaving);
    const joining = audience.newContacts(300 + random.int(700));
    await audience.add(joining);
    if (mode === 'UPSERT') await audience.add(sample(random, audience.members, 100 + random.int(300)), { newEmail: true });
    await steady.stop('SIGTERM');

    const kill = drawKillPoint(random, mode, joining.length, leaving.length);
    doomed = suite.startWorker();
    const killed = doomed;
    let releaseDiff: (() => Promise<void>) | undefined;
    /** How many deliveries the receiver had when the doomed worker was killed: those after are the resuming execution's. */
    let killedAt: number | undefined;
    if (kill.at === 'diff') {
      // The diff waits on this lock, taken on a connection of its own (the app's end a transaction
      // idle for long); the worker is killed inside its transaction.
      const locker = new pg.Client({ connectionString: suite.gateway.databaseUrl });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE run_diff IN SHARE MODE');
      releaseDiff = async () => {
        await locker.query('COMMIT');
        await locker.end();
      };
    } else {
      let seen = 0;
      receiver.onDelivery(async (event) => {
        if (event.type !== kill.side || event.stage !== kill.at) return;
        if (++seen !== kill.nth) return;
        receiver.onDelivery(null);
        killedAt = receiver.deliveries.length;
        await killed.stop('SIGKILL');
        if (event.stage === 'received') return 'discard';
        if (event.stage === 'applied') return 'drop';
      });
    }

    const deliveriesBefore = receiver.deliveries.length;
    const { syncRun } = await triggerSync(suite.gateway, sync.id);
    if (kill.at === 'diff') {
      await waitFor(() => readRun(suite.gateway, syncRun.id), (run) => run.phase === 'computing', { what: 'the diff', timeoutMs: 90_000 });
      killedAt = receiver.deliveries.length;
      await killed.stop('SIGKILL');
      await releaseDiff!();
    } else {
      // The run may end before the n-th batch of its side when members had no usable change: then nothing is killed.
      await Promise.race([killed.exited(), waitForRunEnd(suite.gateway, syncRun.id, 120_000)]);
      receiver.onDelivery(null);
    }
    const crashed = killed.child.signalCode === 'SIGKILL';
    if (!crashed) await killed.stop('SIGTERM');

    // What the dead execution left unconfirmed: its batches' members still in doubt.
    const afterKill = await recordedMembers(syncUuid);
    const unconfirmed = new Set(afterKill.filter((member) => member.inDoubt).map((member) => `${member.inDoubt}:${member.externalId}`));
    const inDoubt = afterKill.filter((member) => member.inDoubt).map((member) => member.externalId);

    // While no worker runs: members leave (some of those in doubt), join, rejoin, change identifiers.
    const leavers = [...new Set([...sample(random, inDoubt.filter((id) => audience.members.has(id)), 30), ...sample(random, audience.members, 20)])];
    const rejoiners = sample(random, [...audience.everMembers].filter((id) => !audience.members.has(id)), 30);
    await audience.remove(leavers);
    await audience.add(rejoiners);
    await audience.add(audience.newContacts(20));
    await audience.add(sample(random, [...audience.members].filter((id) => !rejoiners.includes(id)), 20), { newEmail: true });

    rescuer = suite.startWorker();
    const run = await waitForRunEnd(suite.gateway, syncRun.id, 90_000);
    const context = `mode ${mode}, kill ${JSON.stringify(kill)}, killed ${crashed}\n${rescuer.output().slice(-3_000)}`;
    expect(run, context).toMatchObject({ status: 'SUCCEEDED', membersInvalid: 0, progress: 1 });

    // The destination holds exactly what the gateway recorded: nothing it does not know of, nothing it lost.
    const recorded = await recordedMembers(syncUuid);
    const held = new Set([...receiver.audiences.values()].flat().map(memberKey));
    const recordedKeys = new Set(recorded.map((member) => memberKey(member.identifiers)));
    const confirmed = recorded.filter((member) => member.inDoubt === null);
    const unknown = [...held].filter((key) => !recordedKeys.has(key));
    // UPSERT sends a member's new identifiers as an add and never removes: those it had before stay.
    // The other modes send a member's identifiers once, and again as they were while in doubt.
    const recordedIds = new Set(recorded.map((member) => member.externalId));
    const externalIdOf = (key: string) => (Object.fromEntries(JSON.parse(key) as [string, string][]) as Identifiers)['EXTERNAL_ID']!;
    expect(mode === 'UPSERT' ? unknown.filter((key) => !recordedIds.has(externalIdOf(key))) : unknown, context).toEqual([]);
    expect(confirmed.map((member) => memberKey(member.identifiers)).filter((key) => !held.has(key)), context).toEqual([]);

    // And what the mode promises of the audience.
    const desired = [...audience.members].sort();
    const confirmedIds = confirmed.map((member) => member.externalId).sort();
    const doubtful = recorded.filter((member) => member.inDoubt !== null);
    if (mode === 'MIRROR') {
      expect(confirmedIds, context).toEqual(desired);
      expect(doubtful, context).toEqual([]);
      expect(held.size, context).toBe(desired.length);
    } else if (mode === 'REMOVE') {
      expect(recorded.filter((member) => !audience.members.has(member.externalId)), context).toEqual([]);
    } else {
      expect(desired.filter((id) => !confirmedIds.includes(id)), context).toEqual([]);
      expect(doubtful.filter((member) => audience.members.has(member.externalId)), context).toEqual([]);
    }
    if (mode === 'UPSERT') {
      const stale = confirmed.filter(
        (member) => audience.members.has(member.externalId) && memberKey(member.identifiers) !== memberKey(audience.identifiersOf(member.externalId)),
      );
      expect(stale, context).toEqual([]);
    }

    // The run counted each batch it confirmed, once: the dead execution's answered batches that it
    // had committed, and all of the resuming execution's (which re-sends the dead one's in doubt).
    const counted = { added: 0, removed: 0 };
    receiver.deliveries.slice(deliveriesBefore).forEach((delivery, index) => {
      const first = delivery.members[0]!['EXTERNAL_ID']!;
      const action = delivery.type === ADDED ? 'add' : 'remove';
      const ofDeadExecution = killedAt !== undefined && deliveriesBefore + index < killedAt;
      if (!delivery.answered || (ofDeadExecution && unconfirmed.has(`${action}:${first}`))) return;
      counted[delivery.type === ADDED ? 'added' : 'removed'] += delivery.members.length;
    });
    const counts = await readCounts(syncRun.id);
    expect({ added: counts.membersAdded + counts.membersUpdated, removed: counts.membersRemoved }, context).toEqual(counted);

    // Nothing is left to do, and the run that had finished before is as it was.
    const deliveriesAfter = receiver.deliveries.length;
    const again = await runToEnd(sync.id);
    expect(again, context).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0, membersRemoved: 0 });
    expect(receiver.deliveries.length, context).toBe(deliveriesAfter);
    expect(await db().syncRun.findUniqueOrThrow({ where: { id: finishedRun.id } })).toEqual(finishedRun);

    // Once a run applied all of its diff, the next diffs only the contacts changed since (see
    // src/sync/change-tracking.ts): after the crash too, it sends exactly the new changes.
    await audience.remove(sample(random, audience.members, 25));
    await audience.add([...sample(random, [...audience.everMembers].filter((id) => !audience.members.has(id)), 10), ...audience.newContacts(15)]);
    const followed = await runToEnd(sync.id);
    expect(followed, context).toMatchObject({ status: 'SUCCEEDED' });
    const heldIds = new Set([...receiver.audiences.values()].flat().map((member) => member['EXTERNAL_ID']!));
    const members = [...audience.members].sort();
    if (mode === 'MIRROR') expect([...heldIds].sort(), context).toEqual(members);
    else if (mode === 'REMOVE') expect([...heldIds].filter((id) => !audience.members.has(id)), context).toEqual([]);
    else expect(members.filter((id) => !heldIds.has(id)), context).toEqual([]);
  } finally {
    await Promise.all([steady, doomed, rescuer].map((worker) => worker.stop('SIGKILL')));
    await receiver.close();
  }
}, 400_000);

/** Runs the sync to its end; on a loaded machine a worker takes a while to start. */
async function runToEnd(syncId: string) {
  const { syncRun } = await triggerSync(suite.gateway, syncId);
  return waitForRunEnd(suite.gateway, syncRun.id, 90_000);
}

async function readCounts(runId: string) {
  const run = await db().syncRun.findUniqueOrThrow({ where: { id: decodeGlobalID(runId).id } });
  return { membersAdded: run.membersAdded, membersUpdated: run.membersUpdated, membersRemoved: run.membersRemoved };
}
