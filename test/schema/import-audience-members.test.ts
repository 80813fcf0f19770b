import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToMalformedAndUnknownId, malformedIds, unknownId } from '../support/global-ids.js';
import { MemberTaskUpdated, holdMemberTasks, uploadMembers, waitForTaskEnd } from '../support/member-tasks.js';
import { createAudienceWith, sha256 } from '../support/scenario.js';
import { readUntil, subscribeOverSSE } from '../support/sse.js';
import { expectNothingWritten } from '../support/tables.js';

const BODY_LIMIT = 1024 * 1024;

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ MAX_REQUEST_BODY_BYTES: String(BODY_LIMIT) });
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(() => gateway.reset());

const HEADER = 'Email,Phone,First Name,Last Name,Country,Zip,external_id,Plan';
const BAD_EMAIL = 'Email is not an email address (nor a SHA-256 hex hash)';
const BAD_PHONE = 'Phone is not a valid phone number: use E.164 (e.g. +14155550100) or give the contact a country';
const BAD_COUNTRY = 'Country must be an ISO 3166 alpha-2 code such as "US"';

/**
 * A CSV of `rows` rows, as a spreadsheet would export it (BOM, CRLF), with quoted fields, a field
 * spanning two lines, a blank line, and unusable rows; and what importing it must report.
 */
function spreadsheetExport(rows: number) {
  const lines = [`\ufeff${HEADER}`];
  const invalid: { line: number; reason: string }[] = [];
  const keys = new Set<string>();
  let valid = 0;
  let nextLine = 2;
  const push = (text: string) => {
    lines.push(text);
    nextLine += text.split('\r\n').length;
  };
  const row = (text: string, outcome: { reason: string } | { key: string }) => {
    const line = nextLine;
    push(text);
    if ('reason' in outcome) invalid.push({ line, reason: outcome.reason });
    else {
      valid++;
      keys.add(outcome.key);
    }
  };
  for (let i = 1; i <= rows; i++) {
    if (i === 20) row('short@example.com,+14155550100', { reason: 'has 2 fields where the header has 8' });
    else if (i === 30) row(',,Ada,Byron,GB,,,gold', { reason: 'has no identifier (email, phone, external id or mobile ad id)' });
    else if (i === 40) row(`"Quoted@Example.com",,"O'Brien, ""Jr""",Smith,ie,,,silver`, { key: 'email:quoted@example.com' });
    else if (i === 50) row('multi@example.com,,,,,,,"line one\r\nline two"', { key: 'email:multi@example.com' });
    else if (i === 61) row('not-an-email,,,,,,,', { reason: BAD_EMAIL });
    else if (i === 70) row('USER1@example.com,,,,,,,', { key: 'email:user1@example.com' });
    else if (i === 80) {
      push('');
      row(`user${i}@example.com,,,,,,,`, { key: `email:user${i}@example.com` });
    } else if (i === 90) row('usa@example.com,,,,USA,,,', { reason: BAD_COUNTRY });
    else if (i % 1000 === 7) row(`nobody${i}-at-example.com,,,,,,,gold`, { reason: BAD_EMAIL });
    else if (i % 1000 === 11) row(`phone${i}@example.com,12345,,,US,,,`, { reason: BAD_PHONE });
    else if (i % 5 === 0) row(`user${i}@example.com,,Ada${i},Lovelace,gb,SW1A 1AA,crm-${i},gold`, { key: `ext:crm-${i}` });
    else row(`user${i}@example.com,,Ada${i},Lovelace,gb,SW1A 1AA,,gold`, { key: `email:user${i}@example.com` });
  }
  return {
    csv: `${lines.join('\r\n')}\r\n`,
    expected: {
      imported: valid,
      added: keys.size,
      invalid: invalid.length,
      invalidSamples: invalid.slice(0, 20),
    },
  };
}

async function importCsv(audienceId: string, csv: string | Uint8Array, apiKey?: string) {
  const { status, body } = await uploadMembers(gateway, audienceId, csv, { apiKey });
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  expect(status).toBe(200);
  return body.data.importAudienceMembers;
}

describe('importAudienceMembers', () => {
  test('imports a spreadsheet export of 7,000 rows in batches, publishing progress, with exact counts and samples', async () => {
    const audience = await createAudienceWith(gateway, []);
    const { csv, expected } = spreadsheetExport(7_000);
    const release = await holdMemberTasks(gateway.workspaceId);

    const accepted = await importCsv(audience.id, csv);
    expect(accepted).toMatchObject({ __typename: 'ImportAudienceMembersSuccess', task: { kind: 'IMPORT_AUDIENCE_MEMBERS', status: 'QUEUED' } });
    const stream = await subscribeOverSSE(gateway, MemberTaskUpdated, { taskId: accepted.task.id });
    await release();
    const events = (await readUntil(stream, ({ taskUpdated }) => ['COMPLETED', 'FAILED'].includes(taskUpdated.status), 30_000)).map(
      (data) => data.taskUpdated,
    );

    const running = events.filter((event) => event.status === 'RUNNING');
    expect(running.map((event) => [event.processed, event.total])).toEqual(
      expect.arrayContaining([
        [5_000, 7_000],
        [7_000, 7_000],
      ]),
    );
    expect(running.find((event) => event.processed === 5_000)!.progress).toBeCloseTo(5 / 7);
    const final = events.at(-1)!;
    expect(final).toMatchObject({ status: 'COMPLETED', progress: 1, processed: 7_000, total: 7_000, error: null });
    expect(final.result).toEqual({ audienceId: audience.id, ...expected });
    expect(expected.invalidSamples.slice(0, 8)).toEqual([
      { line: 8, reason: BAD_EMAIL },
      { line: 12, reason: BAD_PHONE },
      { line: 21, reason: 'has 2 fields where the header has 8' },
      { line: 31, reason: 'has no identifier (email, phone, external id or mobile ad id)' },
      { line: 63, reason: BAD_EMAIL },
      { line: 93, reason: BAD_COUNTRY },
      { line: 1010, reason: BAD_EMAIL },
      { line: 1014, reason: BAD_PHONE },
    ]);

    const audienceId = decodeGlobalID(audience.id).id;
    expect(await db().audienceMember.count({ where: { audienceId } })).toBe(expected.added);
    const contact = (key: string) =>
      db().contact.findUniqueOrThrow({
        where: { workspaceId_key: { workspaceId: gateway.workspaceId, key } },
        select: { email: true, firstName: true, lastName: true, country: true, zip: true, externalId: true, attributes: true },
      });
    expect(await contact('ext:crm-5')).toEqual({
      email: 'user5@example.com',
      firstName: 'Ada5',
      lastName: 'Lovelace',
      country: 'GB',
      zip: 'SW1A 1AA',
      externalId: 'crm-5',
      attributes: { Plan: 'gold' },
    });
    expect(await contact('email:quoted@example.com')).toMatchObject({ firstName: `O'Brien, "Jr"`, country: 'IE', attributes: { Plan: 'silver' } });
    expect((await contact('email:multi@example.com')).attributes).toEqual({ Plan: 'line one\r\nline two' });
    expect(await db().taskPayload.count()).toBe(0);
  });

  test('takes pre-hashed emails and mobile ad ids; a hashed column holding something else is an invalid row', async () => {
    const audience = await createAudienceWith(gateway, []);
    const hash = sha256('ada@example.com');
    const csv = `hashed_email,mobile_ad_id\n${hash.toUpperCase()},\nnot-a-hash,\n,6D92078A-8246-4BA4-AE5B-76104861E7DC\n`;

    const task = await waitForTaskEnd(gateway, (await importCsv(audience.id, csv)).task.id);

    expect(task.result).toEqual({
      audienceId: audience.id,
      imported: 2,
      added: 2,
      invalid: 1,
      invalidSamples: [{ line: 3, reason: 'hashed_email is not a SHA-256 hex digest (64 hexadecimal characters)' }],
    });
    const stored = await db().contact.findMany({ select: { key: true }, orderBy: { key: 'asc' } });
    expect(stored.map((contact) => contact.key)).toEqual([`email:${hash}`, 'madid:6d92078a-8246-4ba4-ae5b-76104861e7dc']);
  });

  test('a row with a NUL character (which PostgreSQL text cannot hold) is an invalid row; the others are imported', async () => {
    const audience = await createAudienceWith(gateway, []);
    const csv = 'email,first_name,plan\nada@example.com,Ada,gold\nnul\u0000@example.com,Nul,gold\ngrace@example.com,Gr\u0000ace,gold\nlinus@example.org,Linus,gold\u0000\n';

    const task = await waitForTaskEnd(gateway, (await importCsv(audience.id, csv)).task.id);

    expect(task.status).toBe('COMPLETED');
    const reason = 'has a NUL character, which cannot be stored';
    expect(task.result).toEqual({
      audienceId: audience.id,
      imported: 1,
      added: 1,
      invalid: 3,
      invalidSamples: [{ line: 3, reason }, { line: 4, reason }, { line: 5, reason }],
    });
    expect((await db().contact.findMany({ select: { key: true } })).map((contact) => contact.key)).toEqual(['email:ada@example.com']);
  });

  test('a quoted field left open fails the task before anything is imported', async () => {
    const audience = await createAudienceWith(gateway, []);
    const csv = 'email\r\nada@example.com\r\n"grace@example.com\r\nlinus@example.org\r\n';

    const task = await waitForTaskEnd(gateway, (await importCsv(audience.id, csv)).task.id);

    expect(task.status).toBe('FAILED');
    expect(task.error).toMatch(/quoted field is not closed.*nothing was imported/);
    expect(task.error).not.toMatch(/example/);
    expect(await db().contact.count()).toBe(0);
    expect(await db().taskPayload.count()).toBe(0);
  });

  test.each([
    ['an empty file', '', /the file is empty/],
    ['a file of blank lines', '\ufeff\r\n\r\n', /the file is empty/],
    ['a header without identifier column', 'first_name,last_name,plan\nAda,Lovelace,gold\n', /names no identifier column/],
    ['a header only', 'email,first_name\r\n', /header row but no rows/],
    ['two columns for the email', 'E-mail,email_address\na@example.com,b@example.com\n', /"E-mail" and "email_address" both give the email/],
    ['a column without a name', 'email,,plan\na@example.com,x,gold\n', /column 2 of the header row has no name/],
    ['a NUL character in a column name', 'email,pl\u0000an\na@example.com,gold\n', /column 2 of the header row has a NUL character/],
  ])('%s is a ValidationError on file, and nothing is stored', async (_case, csv, message) => {
    const audience = await createAudienceWith(gateway, []);

    const result = await expectNothingWritten(() => importCsv(audience.id, csv));

    expect(result).toMatchObject({ __typename: 'ValidationError', field: 'file', message: expect.stringMatching(message) });
  });

  test('a file larger than the body limit is refused with 413 as it streams in, and nothing is stored', async () => {
    const audience = await createAudienceWith(gateway, []);
    const csv = `email\n${Array.from({ length: 60_000 }, (_, i) => `someone-${i}@example.com`).join('\n')}\n`;
    expect(csv.length).toBeGreaterThan(BODY_LIMIT);

    const { status, body } = await expectNothingWritten(() => uploadMembers(gateway, audience.id, csv));

    expect(status).toBe(413);
    expect(body.errors?.[0]?.extensions?.code).toBe('REQUEST_ENTITY_TOO_LARGE');
  });

  test('another workspace’s audience is the same NotFoundError as an unknown one; a deleted audience is not found either', async () => {
    const other = await gateway.createWorkspace();
    const theirs = await createAudienceWith(gateway, [], other.apiKey);
    const csv = 'email\nada@example.com\n';

    const foreign = await expectNothingWritten(() => importCsv(theirs.id, csv));
    const unknown = await expectNothingWritten(() => importCsv(unknownId('Audience'), csv));

    expect(foreign).toMatchObject({ __typename: 'NotFoundError', field: 'audienceId' });
    expect(foreign).toEqual(unknown);
    const ours = await createAudienceWith(gateway, []);
    await db().audience.update({ where: { id: decodeGlobalID(ours.id).id }, data: { deletedAt: new Date() } });
    expect(await expectNothingWritten(() => importCsv(ours.id, csv))).toEqual(unknown);
  });

  test('an audience id whose inner id is not a UUID answers as an unknown id', async () => {
    const { malformed, unknown } = await answersToMalformedAndUnknownId((id) => importCsv(id, 'email\nada@example.com\n'), 'Audience');

    expect(unknown).toMatchObject({ __typename: 'NotFoundError', field: 'audienceId' });
    for (const answer of malformed) expect(answer).toEqual(unknown);
  });

  test('a malformed audience id is a ValidationError on audienceId', async () => {
    for (const id of malformedIds('Audience')) {
      const result = await expectNothingWritten(() => importCsv(id, 'email\nada@example.com\n'));
      expect(result).toMatchObject({ __typename: 'ValidationError', field: 'audienceId' });
    }
  });

  test('a multipart request whose operations is not an object, or whose map is not lists of paths, is a 400 (yoga would fail with a 500)', async () => {
    const audience = await createAudienceWith(gateway, []);
    const query = 'mutation ImportMalformed($audienceId: ID!, $file: File!) { importAudienceMembers(audienceId: $audienceId, file: $file) { __typename } }';
    const valid = JSON.stringify({ query, variables: { audienceId: audience.id, file: null } });
    for (const [operations, map] of [
      ['null', { 0: ['variables.file'] }],
      ['5', { 0: ['variables.file'] }],
      ['"x"', { 0: ['variables.file'] }],
      [valid, { 0: 5 }],
      [valid, { 0: [5] }],
    ] as const) {
      const form = new FormData();
      form.set('operations', operations);
      form.set('map', JSON.stringify(map));
      form.set('0', new Blob(['email\nada@example.com\n'], { type: 'text/csv' }), 'members.csv');
      const response = await expectNothingWritten(() => fetch(gateway.app.url, { method: 'POST', headers: { authorization: `Bearer ${gateway.apiKey}` }, body: form }));
      const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
      expect(response.status, `${operations} ${JSON.stringify(map)}`).toBe(400);
      expect(body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/^Malformed multipart request/), extensions: { code: 'BAD_REQUEST' } });
    }
  });

  test('without a WRITE key the upload is refused and nothing is stored', async () => {
    const audience = await createAudienceWith(gateway, []);
    const reader = await gateway.createWorkspace('READ');

    for (const [apiKey, code] of [
      [null, 'UNAUTHENTICATED'],
      [reader.apiKey, 'FORBIDDEN'],
    ] as const) {
      const { body } = await expectNothingWritten(() => uploadMembers(gateway, audience.id, 'email\na@example.com\n', { apiKey }));
      expect(body.errors?.[0]?.extensions?.code).toBe(code);
    }
  });
});
