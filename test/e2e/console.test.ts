import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startFakeWebhookReceiver, type FakeWebhookReceiver } from '../fakes/webhook-receiver.js';
import { AddAudienceMembers, CreateDestination } from '../support/operations.js';
import {
  META_TOKEN,
  createAudienceWith,
  createDestinationWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { runEntryPoint } from '../support/process.js';
import { useGatewaySuite } from '../support/suite.js';
import { waitFor } from '../support/wait.js';

// The console in a real browser (Debian's Chromium, driven by playwright-core) against the real
// gateway and worker, sending to a webhook receiver on loopback (the test gateway allows private
// webhook URLs). Screenshots of each page go to test/artifacts/console/ (not committed).
const suite = useGatewaySuite({ reset: true });
const root = fileURLToPath(new URL('../..', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../artifacts/console/', import.meta.url));
const SECRET = 'whsec-console-0123456789abcdef0123456789';
let browser: Browser;

beforeAll(async () => {
  // The bundle the gateway serves: built unless already built from the same sources.
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/build-console.ts'], { cwd: root });
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);
afterEach(async ({ task }) => {
  // A failed test leaves a picture of each page it had open, to see what the browser showed.
  if (task.result?.state !== 'fail') return;
  const pages = browser.contexts().flatMap((context) => context.pages());
  await Promise.all(pages.map((page, index) => page.screenshot({ path: `${ARTIFACTS}failed-${task.name.slice(0, 40)}-${index}.png`, fullPage: true })));
});
afterAll(async () => {
  await browser?.close();
});

const origin = () => new URL(suite.gateway.app.url).origin;
const consoleUrl = (path = '') => `${origin()}/console${path}`;

/** A page of the console that records any request leaving the gateway, and any script error. */
async function openPage(): Promise<{ page: Page; offsite: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const offsite: string[] = [];
  const errors: string[] = [];
  page.on('request', (sent) => {
    if (new URL(sent.url()).origin !== origin() && !sent.url().startsWith('data:')) offsite.push(sent.url());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, offsite, errors };
}

/** A page already signed in: the key in sessionStorage, as the sign-in form leaves it. */
async function signedInPage(path = '') {
  const opened = await openPage();
  await opened.page.addInitScript((key) => sessionStorage.setItem('audience-sync-console:api-key', key), suite.gateway.apiKey);
  await opened.page.goto(consoleUrl(path));
  return opened;
}

const screenshot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

async function startReceiver(): Promise<FakeWebhookReceiver> {
  return suite.closeAfterTest(await startFakeWebhookReceiver({ signingSecret: SECRET }));
}

/** A webhook sync made through the API, for the tests that start from an existing sync. */
async function webhookSync(receiver: FakeWebhookReceiver, emails: string[]) {
  const created = dataOf(
    await suite.gateway.execute(CreateDestination, {
      input: { name: 'CRM', config: { webhook: { url: receiver.url } }, credentials: { webhook: { signingSecret: SECRET } } },
    }),
  );
  const destination = expectType(created.createDestination, 'CreateDestinationSuccess').destination;
  const audience = await createAudienceWith(suite.gateway, emails);
  return createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
}

const EMAILS = ['ada@example.com', 'grace@example.com', 'linus@example.org', 'edsger@example.net', 'barbara@example.com'];

test('sign in with the keyboard, make a first webhook sync through the forms, run it and watch it reach 100%', async () => {
  const receiver = await startReceiver();
  const { page, offsite, errors } = await openPage();
  await page.goto(consoleUrl());
  await page.getByRole('heading', { name: 'Audience sync console' }).waitFor();
  await screenshot(page, '1-sign-in');

  // Keyboard only: the key field is the first stop, Enter submits.
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
  await page.keyboard.type(suite.gateway.apiKey);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Syncs', exact: true }).waitFor();
  await page.getByText('No syncs yet').waitFor();
  expect(await page.evaluate(() => sessionStorage.getItem('audience-sync-console:api-key'))).toBe(suite.gateway.apiKey);

  await page.getByRole('link', { name: 'New sync' }).first().click();
  await page.getByRole('heading', { name: 'Where should the audience go?' }).waitFor();
  await page.getByLabel('Platform').selectOption('WEBHOOK');
  await page.getByLabel('Destination name').fill('CRM');
  await page.getByLabel('URL').fill(receiver.url);
  await page.getByLabel('Members per request').fill('2');
  await page.getByLabel('Signing secret').fill('too short');
  await page.getByRole('button', { name: 'Create destination' }).click();
  // The gateway's ValidationError, shown beside the field it names.
  await page.getByText('at least 32 characters').first().waitFor();
  expect(await page.getByLabel('Signing secret').getAttribute('aria-invalid')).toBe('true');
  await page.getByLabel('Signing secret').fill(SECRET);
  await screenshot(page, '2-create-destination');
  await page.getByRole('button', { name: 'Create destination' }).click();

  await page.getByRole('heading', { name: 'Who is in the audience?' }).waitFor();
  await page.getByLabel('Audience name').fill('Recent buyers');
  await page.getByLabel('CSV', { exact: true }).fill(['email,first_name', ...EMAILS.map((email) => `${email},X`), 'not-an-email,Y'].join('\n'));
  await screenshot(page, '3-create-audience');
  await page.getByRole('button', { name: 'Create audience and import' }).click();
  await page.getByText('Imported 5 contacts (5 new members); 1 row was invalid.').waitFor();
  await page.getByText(/Line 7:/).waitFor();
  await page.getByRole('button', { name: 'Continue' }).click();

  await page.getByRole('heading', { name: 'How should it sync?' }).waitFor();
  expect(await page.getByLabel('Sync name').inputValue()).toBe('Recent buyers to CRM');
  await page.getByLabel('Run it right away').uncheck();
  await screenshot(page, '4-create-sync');
  await page.getByRole('button', { name: 'Create sync' }).click();
  await page.getByRole('heading', { name: 'Recent buyers to CRM' }).waitFor();
  await page.getByText('Connected:').waitFor();

  // The receiver throttles the first batch for a second: the run shows it waits on the platform.
  receiver.failNext('throttle');
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.getByText('Waiting on the platform').waitFor();
  await screenshot(page, '5-sync-running');
  // One bar per side with changes: this first run only adds.
  const adding = page.getByRole('progressbar', { name: 'Adding' });
  await page.locator('[role=progressbar][aria-label="Adding"][aria-valuenow="100"]').waitFor({ timeout: 20_000 });
  expect(await adding.getAttribute('aria-valuetext')).toBe('100%, 5 of 5');
  expect(await page.getByRole('progressbar', { name: 'Removing' }).count()).toBe(0);
  await page.locator('.run-panel').getByText('Succeeded').waitFor();
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(EMAILS));

  const lastRun = page.locator('table.runs tbody tr').first();
  expect(await lastRun.locator('td').allInnerTexts()).toEqual(
    expect.arrayContaining(['manual', 'Succeeded', '5', '0']),
  );
  expect(await page.locator('.run-chart g.run-bars').count()).toBe(1);
  expect(await page.locator('.run-chart rect.bar.added title').textContent()).toMatch(/added 5$/);
  await screenshot(page, '6-sync-succeeded');

  await page.getByRole('navigation').getByRole('link', { name: 'Syncs', exact: true }).click();
  const row = page.locator('table.syncs tbody tr').first();
  await row.getByText('Recent buyers to CRM').waitFor();
  const cells = await row.locator('td').allInnerTexts();
  expect(cells.map((cell) => cell.replace(/\s+/g, ' ').trim())).toEqual([
    'CRM Webhook',
    'Mirror',
    'Active',
    expect.stringMatching(/^Succeeded/),
    'manual only',
    '5',
    '—',
  ]);
  await screenshot(page, '7-syncs');
  expect(offsite).toEqual([]);
  expect(errors).toEqual([]);
  await page.close();
}, 90_000);

test('a failing run: its message on the sync page, and the sync in red with its error on the syncs list, live', async () => {
  const receiver = await startReceiver();
  const sync = await webhookSync(receiver, EMAILS.slice(0, 2));
  const { page: list, errors } = await signedInPage();
  const row = list.locator('table.syncs tbody tr').first();
  await row.getByText('Active').waitFor();

  const { page } = await signedInPage(`/syncs/${encodeURIComponent(sync.id)}`);
  await page.getByRole('heading', { name: sync.name }).waitFor();
  // The page checks the destination as it opens (a signed ping): the refusal is for the run.
  await page.getByText('Connected:').waitFor();
  receiver.failNext('forbidden');
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.locator('.run-panel').getByText('Failed').waitFor({ timeout: 15_000 });
  const message = await page.locator('.run-panel .error').innerText();
  expect(message).toMatch(/signing secret/);
  await page.getByText(`The last run failed: ${message}`).waitFor();
  await page.getByLabel('Only failed runs').check();
  expect(await page.locator('table.runs tbody tr').count()).toBe(1);
  expect(await page.locator('table.runs tbody tr .run-error').innerText()).toBe(message);
  await screenshot(page, '8-sync-failed');

  // The list, open all along, turned red by itself.
  const badge = row.locator('.badge', { hasText: 'Error' });
  await badge.waitFor();
  expect(await row.locator('.status-error').innerText()).toBe(message);
  expect(await badge.evaluate((element) => getComputedStyle(element).backgroundColor)).toBe('rgb(185, 28, 28)');
  await screenshot(list, '9-syncs-error');
  expect(errors).toEqual([]);
  await Promise.all([page.close(), list.close()]);
});

test('an uploaded CSV with a bad header is refused with the reason, then imported into the same audience', async () => {
  const receiver = await startReceiver();
  await webhookSync(receiver, []);
  const { page, errors } = await signedInPage('/new');
  await page.getByLabel('An existing destination').selectOption({ label: 'CRM (Webhook)' });
  await page.getByRole('button', { name: 'Use it' }).click();
  await page.getByLabel('Audience name').fill('Uploaded');
  await page.getByLabel('Upload a CSV file').check();
  await page.getByLabel('CSV file', { exact: true }).setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from('name,city\nAda,London\n') });
  await page.getByRole('button', { name: 'Create audience and import' }).click();
  await page.getByRole('alert').getByText(/the header row names no identifier column/).waitFor();
  await page.getByText('The audience “Uploaded” was made: fix the file, then import it again into it.').waitFor();
  await page.getByLabel('CSV file', { exact: true }).setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from('email\nada@example.com\ngrace@example.com\n') });
  await page.getByRole('button', { name: 'Import again' }).click();
  await page.getByText('Imported 2 contacts (2 new members); 0 rows were invalid.').waitFor();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Create sync' }).click();
  // "Run it right away" is on by default: the first run starts with the sync.
  await page.locator('.run-panel').getByText('Succeeded').waitFor({ timeout: 15_000 });
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(['ada@example.com', 'grace@example.com']));
  expect(errors).toEqual([]);
  await page.close();
});

test('a sync page shows its destination’s health, and the warning of an API version near its sunset', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createDestinationWith(suite.gateway, {
    name: 'Meta ads',
    config: { meta: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl, apiVersion: 'V25_0' } },
    credentials: { meta: { accessToken: META_TOKEN } },
  });
  const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  suite.gateway.clock.set('2027-01-01T00:00:00Z');
  const { page, errors } = await signedInPage(`/syncs/${encodeURIComponent(sync.id)}`);
  await page.getByText('Connected:').waitFor();
  const warnings = await page.getByRole('list', { name: 'Warnings' }).innerText();
  expect(warnings).toBe('Meta API v25.0 is switched off on 2027-02-23: set apiVersion to v27.0');
  await screenshot(page, '10-destination-warning');
  expect(errors).toEqual([]);
  await page.close();
});

test('the destination form sends a platform’s typed settings, and shows what the gateway refuses beside the field', async () => {
  const { page, errors } = await signedInPage('/new');
  await page.getByRole('heading', { name: 'Where should the audience go?' }).waitFor();
  await page.getByLabel('Platform').selectOption('GOOGLE');
  await page.getByLabel('Destination name').fill('Google Ads');
  await page.getByLabel('Google Ads account id').fill('123-456-7890');
  await page.getByLabel('Consent: ad user data').selectOption('CONSENT_GRANTED');
  await page.getByLabel('Consent: ad personalization').selectOption('CONSENT_GRANTED');
  await page.getByLabel('OAuth client id').fill('client');
  await page.getByLabel('OAuth client secret').fill('client-secret');
  await page.getByLabel('Refresh token').fill('1//refresh-token');
  await page.getByRole('button', { name: 'Create destination' }).click();

  // The terms box left unticked is sent as false: the gateway's reason shows beside it, and nothing is created.
  const terms = page.getByLabel('I accepted the Customer Match terms in Google Ads');
  await page.getByText(/accept the Customer Match terms in Google Ads/).first().waitFor();
  expect(await terms.getAttribute('aria-invalid')).toBe('true');
  expect(await db().destination.count()).toBe(0);

  await terms.check();
  await page.getByRole('button', { name: 'Create destination' }).click();
  await page.getByRole('heading', { name: 'Who is in the audience?' }).waitFor();
  const [created] = await db().destination.findMany();
  expect(created).toMatchObject({ platform: 'GOOGLE', config: { operatingAccount: { accountId: '1234567890' }, customerMatchTermsAccepted: true } });
  expect(errors).toEqual([]);
  await page.close();
});
test('a running run shows what it is doing, live, and its Cancel button stops it after the current batch', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  const emails = Array.from({ length: 15_000 }, (_, i) => `viewer${i}@example.com`);
  for (let start = 0; start < emails.length; start += 5_000) {
    const members = emails.slice(start, start + 5_000).map((email) => ({ email }));
    expectType(dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members })).addAudienceMembers, 'AddAudienceMembersSuccess');
  }
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  const { page, errors } = await signedInPage(`/syncs/${encodeURIComponent(sync.id)}`);
  await page.getByRole('heading', { name: sync.name }).waitFor();
  expect(await page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);

  // The first upload waits at Meta until the run was cancelled.
  let gate = fake.hold();
  await page.getByRole('button', { name: 'Run now' }).click();
  while (!(await gate.waiting).url.endsWith('/users')) {
    gate.release();
    gate = fake.hold();
  }
  await page.locator('.run-panel .activity', { hasText: /^adding: batch 1 of 2 to Meta \(\d+ s\)$/ }).waitFor();
  await screenshot(page, '11-run-activity');
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await page.getByText('Cancelling: the run stops after its current batch.').first().waitFor();
  gate.release();
  await page.locator('.run-panel').getByText('Cancelled', { exact: true }).waitFor({ timeout: 20_000 });
  await page.getByText('Cancelled by the API key “test key”.').waitFor();
  expect(await page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);
  expect(heldEmails(fake)).toHaveLength(10_000);
  await screenshot(page, '12-run-cancelled');
  expect(errors).toEqual([]);
  await page.close();
}, 90_000);

/** A raw GET, with the path exactly as given (fetch would normalise `..`). */
function rawGet(path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(`${origin()}${path}`, { method: 'GET' }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

test('with PERSISTED_OPERATIONS=only the console works: its operations are trusted documents, sent by hash', async () => {
  const receiver = await startReceiver();
  const sync = await webhookSync(receiver, EMAILS.slice(0, 2));
  const dataDir = await mkdtemp(join(tmpdir(), 'asg-console-only-'));
  // A second gateway on the same database, refusing every document that is not in its manifest.
  const strict = runEntryPoint('build/server.js', {
    DATABASE_URL: suite.gateway.databaseUrl,
    ROLES: 'gateway',
    PORT: '0',
    DATA_DIR: dataDir,
    PERSISTED_OPERATIONS: 'only',
    LOG_LEVEL: 'info',
  });
  try {
    const url = new URL((JSON.parse(await strict.waitFor(/Gateway listening/)) as { url: string }).url);
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const refusals: string[] = [];
    page.on('response', async (response) => {
      if (response.url().endsWith('/graphql') && /PERSISTED_QUERY/.test(await response.text().catch(() => ''))) refusals.push(response.url());
    });
    await page.addInitScript((key) => sessionStorage.setItem('audience-sync-console:api-key', key), suite.gateway.apiKey);
    // A query over the WebSocket: the list of syncs.
    await page.goto(`${url.origin}/console`);
    await page.locator('table.syncs tbody tr').first().getByText(sync.name).waitFor();
    // A mutation over HTTP: the run is requested.
    await page.goto(`${url.origin}/console/syncs/${encodeURIComponent(sync.id)}`);
    await page.getByRole('heading', { name: sync.name }).waitFor();
    await page.getByRole('button', { name: 'Run now' }).click();
    await waitFor(() => db().syncRun.count(), (count) => count === 1, { what: 'the run the console requested' });
    expect(refusals).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  } finally {
    await strict.stop('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the gateway serves the page under every console path, its hashed assets, and nothing else of the disk', async () => {
  const page = await rawGet('/console/syncs/anything');
  expect(page.status).toBe(200);
  expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
  const asset = /\/console\/assets\/[\w-]+\.js/.exec(page.body)![0];
  const script = await rawGet(asset);
  expect(script).toMatchObject({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=31536000, immutable' } });
  for (const path of ['/console/assets/..%2f..%2fpackage.json', '/console/assets/../../package.json', '/console/assets/index.html', '/console/assets/missing.js']) {
    expect((await rawGet(path)).status, path).toBe(404);
  }
  expect(await rawGet('/')).toMatchObject({ status: 302, headers: { location: '/console/' } });
  const posted = await fetch(consoleUrl(), { method: 'POST' });
  expect(posted.status).toBe(405);
});
