// The storefront in a real browser: one souk (demo data, test card gateway) and one
// headless chromium for the whole run; the journeys share them, each in its own
// browser context (its own cookies). Run: npm test (see README, "Browser tests").

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSouk } from './lib/server.mjs';
import { launchBrowser } from './lib/browser.mjs';
import { apiClient } from './lib/api.mjs';
import { SCREENSHOT_DIR } from './lib/shots.mjs';
import { registerSmoke } from './journeys/smoke.mjs';
import { registerJourney1 } from './journeys/journey1.mjs';
import { registerJourney2 } from './journeys/journey2.mjs';
import { registerNoJs } from './journeys/nojs.mjs';
import { registerAccessibility } from './journeys/accessibility.mjs';

/** Filled by before(); the journeys read it when their steps run. */
const env = {};

before(async () => {
  env.souk = await startSouk();
  console.log(`# souk ${env.souk.url} (binary ${env.souk.bin}, data ${env.souk.dataDir})`);
  console.log(`# screenshots: ${SCREENSHOT_DIR}`);
  env.browser = await launchBrowser();
  env.api = await apiClient(env.souk.url);
});

after(async () => {
  await env.api?.dispose();
  await env.browser?.close();
  if (env.souk) {
    const running = env.souk.isRunning();
    const exit = await env.souk.stop();
    if (!running) console.log(`# souk had stopped on its own: ${JSON.stringify(exit)}\n${env.souk.logTail()}`);
  }
});

describe('harness', () => {
  test('souk answers /health and /ready to the browser over TLS', async () => {
    const ctx = await env.browser.newContext();
    const page = await ctx.newPage();
    try {
      const health = await page.goto(`${env.souk.url}/health`);
      assert.equal(health.status(), 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const ready = await page.goto(`${env.souk.url}/ready`);
      assert.equal(ready.status(), 200, `/ready: ${await ready.text()}`);
    } finally {
      await ctx.close();
    }
  });
});

registerSmoke(env);
registerJourney1(env);
registerJourney2(env);
registerNoJs(env);
registerAccessibility(env);
