// The storefront's outline: the home page and the 404 page exist and look like the store.

import assert from 'node:assert/strict';
import { journey, gotoOk } from '../lib/journey.mjs';
import { capture } from '../lib/pages.mjs';
import { expectVisible, searchBox } from '../lib/ui.mjs';

export function registerSmoke(env) {
  journey('smoke', (step, state) => {
    step('home', 'the home page renders with a title, a main landmark and a search box', async () => {
      const ctx = await env.browser.newContext();
      state.ctx = ctx;
      const page = (state.page = await ctx.newPage());
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const res = await gotoOk(page, `${env.souk.url}/`, 'home page');
      assert.match(res.headers()['content-type'] || '', /text\/html/, 'the home page is HTML');
      assert.ok((await page.title()).trim().length > 0, 'the home page has a <title>');
      await expectVisible(page, page.getByRole('main'), 'a <main> landmark');
      await expectVisible(page, searchBox(page), 'a search box in the header');
      await capture(page, 'home');
      assert.deepEqual(errors, [], `no JavaScript errors on the home page: ${errors.join('; ')}`);
    });

    step('not-found', 'an unknown page answers 404 with a page in the store look', async () => {
      const page = state.page;
      const res = await page.goto(`${env.souk.url}/no-such-page-${Date.now()}`);
      assert.equal(res.status(), 404);
      assert.match(res.headers()['content-type'] || '', /text\/html/, 'the 404 answer is an HTML page, not JSON');
      await expectVisible(page, searchBox(page), 'the header with its search box on the 404 page');
      await state.ctx.close();
    });
  });
}
