// The storefront's outline: the home page and the 404 page exist and look like the store.

import assert from 'node:assert/strict';
import { finish, journey, gotoOk } from '../lib/journey.mjs';
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

    step('keyboard', 'by keyboard: Tab reaches "Skip to content" first, then the search box; Enter searches', async () => {
      const page = state.page;
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      await page.keyboard.press('Tab');
      const first = await page.evaluate(() => ({ tag: document.activeElement.tagName, text: document.activeElement.textContent.trim(), href: document.activeElement.getAttribute('href') }));
      assert.equal(first.tag, 'A', `the first Tab stop is a link (it is a ${first.tag})`);
      assert.match(first.text, /skip/i, `the first Tab stop is "Skip to content" (it is "${first.text}")`);
      const box = searchBox(page);
      let reached = false;
      for (let i = 0; i < 10 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await box.evaluate((el) => el === document.activeElement);
      }
      assert.ok(reached, 'the search box is reached by Tab within 10 stops');
      const outline = await box.evaluate((el) => {
        const cs = getComputedStyle(el);
        return { style: cs.outlineStyle, width: cs.outlineWidth, shadow: cs.boxShadow };
      });
      assert.ok(outline.style !== 'none' && outline.width !== '0px' || outline.shadow !== 'none', `focus is visible on the search box (outline ${JSON.stringify(outline)})`);
      await page.keyboard.type('lamp');
      await Promise.all([page.waitForURL((u) => u.searchParams.get('q') === 'lamp'), page.keyboard.press('Enter')]);
    });

    step('suggestions', 'as-you-type suggestions: typing shows a listbox, ArrowDown and Enter open one', async () => {
      const page = state.page;
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      const box = searchBox(page);
      await box.click();
      await box.pressSequentially('lam', { delay: 60 });
      const options = page.getByRole('banner').getByRole('listbox').getByRole('option');
      await expectVisible(page, options, 'a listbox of suggestions (role listbox with options) under the search box after typing "lam"');
      const first = (await options.first().innerText()).trim();
      await box.press('ArrowDown');
      assert.equal(await options.first().getAttribute('aria-selected'), 'true', 'ArrowDown marks the first suggestion selected (aria-selected)');
      await Promise.all([page.waitForURL((u) => u.pathname === '/search' || u.pathname.startsWith('/c/')), box.press('Enter')]);
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('heading', { level: 1 }), `a results page for the suggestion "${first}"`);
    });

    step('not-found', 'an unknown page answers 404 with a page in the store look', async () => {
      const page = state.page;
      const res = await page.goto(`${env.souk.url}/no-such-page-${Date.now()}`);
      assert.equal(res.status(), 404);
      assert.match(res.headers()['content-type'] || '', /text\/html/, 'the 404 answer is an HTML page, not JSON');
      await expectVisible(page, searchBox(page), 'the header with its search box on the 404 page');
      await finish(state.ctx);
    });
  });
}
