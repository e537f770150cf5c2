// The storefront without JavaScript (issue 8: "works without JavaScript"): search with
// a typo, a facet, a product with a variant chosen in the plain select, add to cart,
// the cart, and a checkout page that can be submitted.

import assert from 'node:assert/strict';
import { journey, gotoOk } from '../lib/journey.mjs';
import { TYPO_QUERY, pickProducts, variantChoice } from '../lib/data.mjs';
import { esc, expectVisible, header, search } from '../lib/ui.mjs';
import { addToCart, openResult } from '../lib/shop.mjs';

export function registerNoJs(env) {
  journey('without JavaScript', (step, state) => {
    const s = {};

    step('search', `search "${TYPO_QUERY}" and filter by brand with JavaScript off`, async () => {
      s.pick = await pickProducts(env.api);
      s.ctx = await env.browser.newContext({ javaScriptEnabled: false });
      const page = (state.page = s.page = await s.ctx.newPage());
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      await search(page, TYPO_QUERY);
      const filters = page.getByRole('complementary', { name: /filter/i });
      const facet = filters.getByRole('link', { name: new RegExp(`^\\s*${esc(s.pick.brand)}\\b`, 'i') });
      await expectVisible(page, facet, `a brand facet link "${s.pick.brand}" that works without JavaScript`);
      await Promise.all([page.waitForEvent('load'), facet.first().click()]);
      assert.ok([...new URL(page.url()).searchParams.values()].some((v) => v.includes(s.pick.brand)), 'the brand filter is in the URL');
    });

    step('variant-cart', 'choose a variant in the select and add to cart', async () => {
      const page = s.page;
      await openResult(page, s.pick.first);
      const { value, variant } = variantChoice(s.pick.first);
      const select = page.getByRole('main').getByRole('combobox', { name: /option|variant|size|colour|choose/i });
      await expectVisible(page, select, 'a variant select that works without JavaScript');
      const options = await select.first().locator('option').evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent })));
      const wanted = options.find((o) => new RegExp(`\\b${esc(value)}\\b`, 'i').test(o.text));
      assert.ok(wanted, `an option "${value}"`);
      await select.first().selectOption(wanted.value);
      await addToCart(page, 1);
      await header(page, /cart/i, 'the header "Cart" link');
      const line = page.getByRole('main').getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') });
      await expectVisible(page, line, `the line "${s.pick.first.title}" in the cart`);
      assert.ok((await page.getByRole('main').innerText()).includes(variant.sku), `the cart line is the chosen variant (SKU ${variant.sku})`);
    });

    step('checkout', 'the checkout page offers a form to place the order', async () => {
      const page = s.page;
      const link = page.getByRole('main').getByRole('link', { name: /check ?out/i });
      await expectVisible(page, link, 'a "Check out" link');
      await Promise.all([page.waitForEvent('load'), link.first().click()]);
      await expectVisible(page, page.getByRole('main').getByRole('button', { name: /place order/i }), 'a "Place order" button that posts the form');
      await s.ctx.close();
    });
  });
}
