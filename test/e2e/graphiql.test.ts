import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { activeSubscriptions } from '../../src/infra/metrics.js';
import { TriggerAudienceSync } from '../support/operations.js';
import { dataOf, expectType } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';
import { waitFor } from '../support/wait.js';

// GraphiQL in a real browser: Debian's Chromium, driven by playwright-core. The machine has no
// network beyond loopback, so this also proves GraphiQL loads without any CDN.
const suite = useGatewaySuite();
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
});

/** The text of a Monaco editor; it renders spaces as non-breaking ones. */
const editorText = async (editor: Locator) => (await editor.locator('.view-lines').innerText()).replace(/\s+/g, ' ');

/** A new page, and the requests it makes anywhere but the gateway. */
async function newPageWatchingRequests(): Promise<{ page: Page; offsite: string[] }> {
  const page = await browser.newPage();
  const offsite: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    // blob: URLs are the editor's workers, made in the page; anything on the network must be ours.
    if (url.protocol !== 'blob:' && url.origin !== new URL(suite.gateway.app.url).origin) offsite.push(request.url());
  });
  return { page, offsite };
}

/** Opens GraphiQL with `query` in the editor and the API key in its Headers tab, and runs it. */
async function runInGraphiQL(query: string): Promise<Page> {
  const { page, offsite } = await newPageWatchingRequests();
  await page.addInitScript((apiKey) => {
    localStorage.setItem('graphiql:headers', JSON.stringify({ Authorization: `Bearer ${apiKey}` }));
  }, suite.gateway.apiKey);
  await page.goto(`${suite.gateway.app.url}?query=${encodeURIComponent(query)}`);
  // The run button is there before the editor has its text: run once it has.
  await expect.poll(() => editorText(page.locator('.graphiql-query-editor')), { timeout: 60_000 }).toBe(query.replace(/\s+/g, ' '));
  await page.click('.graphiql-execute-button');
  expect(offsite).toEqual([]);
  return page;
}

const openSubscriptions = async () => (await activeSubscriptions.get()).values[0]?.value ?? 0;

/** The result panel's text; the editor renders spaces as non-breaking ones. */
const resultText = async (page: Page) =>
  (await page.locator('.result-window').first().innerText()).replace(/\s+/g, ' ');

test('GraphiQL greets a first visit: its title, an icon of its own, a tab explaining the API key header, headers shared by tabs', async () => {
  const { page, offsite } = await newPageWatchingRequests();
  await page.goto(suite.gateway.app.url);
  await page.locator('.graphiql-execute-button').waitFor({ timeout: 60_000 });

  expect(await page.title()).toBe('Audience sync gateway · GraphiQL');
  const icon = await page.locator('link[rel="icon"]').getAttribute('href');
  expect(icon).toMatch(/^\/graphiql\/assets\/favicon-[\w-]+\.svg$/);
  const iconResponse = await fetch(new URL(icon!, suite.gateway.app.url));
  expect([iconResponse.status, iconResponse.headers.get('content-type')]).toEqual([200, 'image/svg+xml']);
  // The first tab says where the key goes, and holds a query to run with it.
  // The editor renders its lines after the execute button appears: wait for them.
  await page.locator('.graphiql-query-editor .view-lines', { hasText: 'Open the Headers tab' }).waitFor();
  const welcome = await editorText(page.locator('.graphiql-query-editor'));
  expect(welcome).toContain('Open the Headers tab');
  expect(welcome).toContain('{ "Authorization": "Bearer <your API key>" }');
  expect(welcome).toContain('query Welcome');
  // The Headers tab is open, and the key typed there runs the first query.
  await expect.poll(() => page.locator('.graphiql-editor-tools button[data-name="headers"]').getAttribute('class')).toContain('active');
  const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor:visible');
  await headersEditor.locator('.view-lines').click();
  await page.keyboard.insertText(`{ "Authorization": "Bearer ${suite.gateway.apiKey}" }`);
  await page.click('.graphiql-execute-button');
  await expect.poll(() => resultText(page), { timeout: 60_000 }).toContain('"role": "WRITE"');
  // A new tab starts with the same headers.
  await page.click('button[aria-label="New tab"]');
  await expect.poll(() => page.locator('.graphiql-tab').count()).toBe(2);
  await expect.poll(() => editorText(headersEditor)).toContain(`"Bearer ${suite.gateway.apiKey}"`);
  expect(offsite).toEqual([]);
  await page.close();
});

test('GraphiQL loads from the gateway alone and runs a query with the API key from its Headers tab', async () => {
  const page = await runInGraphiQL('{ viewer { role } audiences { edges { node { name } } } }');
  await expect.poll(() => resultText(page), { timeout: 60_000 }).toContain('"role": "WRITE"');
  await page.close();
});

test('a subscription run in GraphiQL shows the live updates of a sync run', async () => {
  const { sync } = await suite.metaSyncScenario(['ada@example.com', 'grace@example.com']);
  const page = await runInGraphiQL(
    `subscription { audienceSyncRunUpdated(syncId: "${sync.id}") { status membersAdded } }`,
  );
  // GraphiQL shows a subscription's latest event: trigger once the gateway holds the subscription.
  await expect.poll(() => page.locator('.graphiql-execute-button').getAttribute('aria-label')).toMatch(/stop/i);
  await waitFor(openSubscriptions, (open) => open > 0, { what: 'GraphiQL subscription on the gateway' });
  expectType(dataOf(await suite.gateway.execute(TriggerAudienceSync, { id: sync.id })).triggerAudienceSync, 'TriggerAudienceSyncSuccess');
  await expect.poll(() => resultText(page), { timeout: 60_000 }).toContain('"status": "SUCCEEDED"');
  expect(await resultText(page)).toContain('"membersAdded": 2');
  await page.close();
});
