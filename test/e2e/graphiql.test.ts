import { chromium, type Browser, type Page } from 'playwright-core';
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

/** Opens GraphiQL with `query` in the editor and the API key in its Headers tab, and runs it. */
async function runInGraphiQL(query: string): Promise<Page> {
  const page = await browser.newPage();
  const offsite: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    // blob: URLs are the editor's workers, made in the page; anything on the network must be ours.
    if (url.protocol !== 'blob:' && url.origin !== new URL(suite.gateway.app.url).origin) offsite.push(request.url());
  });
  await page.addInitScript((apiKey) => {
    localStorage.setItem('graphiql:headers', JSON.stringify({ Authorization: `Bearer ${apiKey}` }));
  }, suite.gateway.apiKey);
  await page.goto(`${suite.gateway.app.url}?query=${encodeURIComponent(query)}`);
  await page.click('.graphiql-execute-button', { timeout: 60_000 });
  expect(offsite).toEqual([]);
  return page;
}

const openSubscriptions = async () => (await activeSubscriptions.get()).values[0]?.value ?? 0;

/** The result panel's text; the editor renders spaces as non-breaking ones. */
const resultText = async (page: Page) =>
  (await page.locator('.result-window').first().innerText()).replace(/\s+/g, ' ');

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
