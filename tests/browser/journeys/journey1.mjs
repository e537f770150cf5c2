// Journey 1, a new visitor: searches with a typo, filters by a facet, opens a product,
// picks a variant, adds to cart from two vendors, registers during checkout, pays with
// the test card that needs the confirm step, sees the confirmation, and finds the
// order with its timeline in the account.

import assert from 'node:assert/strict';
import { finish, journey, gotoOk } from '../lib/journey.mjs';
import { capture } from '../lib/pages.mjs';
import { CORRECTED, TYPO_QUERY, pickProducts, variantChoice } from '../lib/data.mjs';
import { esc, expectSignedIn, expectVisible, fillLabel, follow, header, search, submit } from '../lib/ui.mjs';
import { addToCart, fillAddress, fillCard, formatMoney, openResult } from '../lib/shop.mjs';

/** The test gateway's card that asks for the confirm step, and the code it accepts. */
const CONFIRM_CARD = '4000000000003220';
const CONFIRM_CODE = '123456';

export function registerJourney1(env) {
  journey('journey 1 (new visitor, test card)', (step, state) => {
    const s = {};

    step('data', 'choose products from the demo catalog through the API', async () => {
      s.pick = await pickProducts(env.api);
      s.email = `visitor-${Date.now()}@example.com`;
      s.password = 'correct-horse-battery-7';
    });

    step('home', 'open the home page', async () => {
      s.ctx = await env.browser.newContext();
      const page = (state.page = s.page = await s.ctx.newPage());
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      await expectVisible(page, page.getByRole('main'), 'a <main> landmark');
    });

    step('category', 'open a top category from the category menu', async () => {
      const page = s.page;
      const nav = page.getByRole('navigation', { name: /categor/i });
      await expectVisible(page, nav, 'a navigation landmark named "Categories" (the category menu)');
      await follow(page, /fashion/i, 'a "Fashion" link in the category menu', nav);
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /fashion/i }), 'an h1 "Fashion" on the category page');
      await capture(page, 'category');
    });

    step('search-typo', `search for "${TYPO_QUERY}" and get results for "${CORRECTED}"`, async () => {
      const page = s.page;
      await search(page, TYPO_QUERY);
      assert.equal(new URL(page.url()).searchParams.get('q'), TYPO_QUERY, 'the query is in the URL');
      await expectVisible(
        page,
        page.getByText(new RegExp(`(did you mean|showing results for|results for|search(ed)? for)[^a-z]*${CORRECTED}`, 'i')),
        `a "Did you mean ${CORRECTED}?" notice`,
      );
      await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') }), `a result linking to "${s.pick.first.title}"`);
      await capture(page, 'search');
    });

    step('facet', 'filter the results by the brand facet', async () => {
      const page = s.page;
      const brand = s.pick.brand;
      const filters = page.getByRole('complementary', { name: /filter/i });
      await expectVisible(page, filters, 'the facets as a complementary region named "Filters"');
      const name = new RegExp(`^\\s*${esc(brand)}\\b`, 'i');
      const facet = filters.getByRole('checkbox', { name }).or(filters.getByRole('link', { name })).first();
      await expectVisible(page, facet, `a brand facet "${brand}" (checkbox or link) in the filters`);
      if ((await facet.getAttribute('type')) === 'checkbox') {
        await facet.check();
        const apply = filters.getByRole('button', { name: /apply|filter|update/i });
        if (await apply.count()) await apply.first().click();
      } else {
        await facet.click();
      }
      await page.waitForURL((u) => [...u.searchParams.values()].some((v) => v.includes(brand)));
      await page.waitForLoadState('load');
      assert.equal(new URL(page.url()).searchParams.get('q'), TYPO_QUERY, 'the query is kept with the filter');
      // Every result is of that brand now: the chosen product is there, and the brand facet is marked on.
      await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') }), `"${s.pick.first.title}" among the filtered results`);
      const others = s.pick.second.brand !== brand ? s.pick.second.title : null;
      if (others) {
        assert.equal(await page.getByRole('main').getByRole('link', { name: new RegExp(`^${esc(others)}$`, 'i') }).count(), 0, `"${others}" (brand ${s.pick.second.brand}) is filtered out`);
      }
    });

    step('product', 'open the product page', async () => {
      const page = s.page;
      await openResult(page, s.pick.first);
      await expectVisible(page, page.getByRole('main').getByText(new RegExp(esc(s.pick.first.vendor.name), 'i')), `the vendor card "${s.pick.first.vendor.name}"`);
      await capture(page, 'product');
    });

    step('weight', 'the product page weighs under 60 KB of HTML, CSS and JS (images excluded)', async (t) => {
      // A fresh context, so nothing comes from the cache and every byte is counted.
      const ctx = await env.browser.newContext();
      try {
        const fresh = await ctx.newPage();
        await fresh.goto(s.page.url(), { waitUntil: 'load' });
        const parts = await fresh.evaluate(() => [
          ...performance.getEntriesByType('navigation').map((e) => ({ name: 'HTML', kind: 'html', bytes: e.decodedBodySize, wire: e.encodedBodySize })),
          ...performance.getEntriesByType('resource')
            .filter((e) => /\.(css|js)(\?|$)/.test(new URL(e.name).pathname))
            .map((e) => ({ name: new URL(e.name).pathname, kind: 'asset', bytes: e.decodedBodySize, wire: e.encodedBodySize })),
        ]);
        const total = parts.reduce((n, p) => n + p.bytes, 0);
        const wire = parts.reduce((n, p) => n + p.wire, 0);
        t.diagnostic(`product page: ${total} bytes of HTML+CSS+JS (${wire} compressed): ${parts.map((p) => `${p.name} ${p.bytes}`).join(', ')}`);
        assert.ok(parts.some((p) => p.kind === 'html') && parts.length >= 2, `the HTML and its CSS/JS were measured: ${JSON.stringify(parts)}`);
        assert.ok(total < 60 * 1024, `HTML+CSS+JS of the product page is ${total} bytes uncompressed, over the 60 KB budget`);
      } finally {
        await ctx.close();
      }
    });

    step('variant', 'pick a variant: the price follows the choice', async () => {
      const page = s.page;
      const { option, value, variant } = (s.choice = variantChoice(s.pick.first));
      const main = page.getByRole('main');
      const radio = main.getByRole('radio', { name: new RegExp(`\\b${esc(value)}\\b`, 'i') });
      const select = main.getByRole('combobox', { name: new RegExp(`${option}|option|variant|choose`, 'i') });
      await expectVisible(page, radio.or(select), `a "${option}" choice (radio "${value}", or a select labelled "${option}" or "Choose an option")`);
      if (await radio.count()) {
        await radio.first().check();
      } else {
        const options = await select.first().locator('option').evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent })));
        const wanted = options.find((o) => new RegExp(`\\b${esc(value)}\\b`, 'i').test(o.text));
        assert.ok(wanted, `an option "${value}" among ${JSON.stringify(options.map((o) => o.text))}`);
        await select.first().selectOption(wanted.value);
      }
      // With JavaScript on, the shown price follows the choice without a reload.
      const shown = main.locator('[data-variant-price]');
      if (await shown.count()) {
        await expectVisible(page, shown.filter({ hasText: formatMoney(variant.price.amount) }), `the price ${formatMoney(variant.price.amount)} of the chosen variant`);
      }
    });

    step('add-first', 'add it to the cart', async () => {
      const page = s.page;
      await addToCart(page, 1);
    });

    step('add-second', 'add a product of a second vendor (found by its name)', async () => {
      const page = s.page;
      await search(page, s.pick.second.title);
      await openResult(page, s.pick.second);
      await addToCart(page, 2);
    });

    step('cart', 'the cart groups the lines by vendor', async () => {
      const page = s.page;
      await header(page, /cart/i, 'the header "Cart" link');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /cart/i }), 'an h1 "Your cart"');
      for (const p of [s.pick.first, s.pick.second]) {
        const group = page.getByRole('region', { name: new RegExp(esc(p.vendor.name), 'i') });
        await expectVisible(page, group, `a vendor group (a region named after "${p.vendor.name}")`);
        await expectVisible(page, group.getByRole('link', { name: new RegExp(esc(p.title), 'i') }), `the line "${p.title}" in the "${p.vendor.name}" group`);
      }
      const sku = s.choice.variant.sku;
      assert.ok((await page.getByRole('main').innerText()).includes(sku), `the first line is the variant picked on the product page (SKU ${sku})`);
      await capture(page, 'cart');
    });

    step('checkout-register', 'check out, and create an account on the way', async () => {
      const page = s.page;
      await follow(page, /check ?out/i, 'a "Check out" link or button');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /checkout/i }), 'an h1 "Checkout"');
      await capture(page, 'checkout');
      await follow(page, /create (an )?account|register/i, 'a "Create an account" link on the guest checkout');
      await fillLabel(page, /^(full )?name/i, 'Vera Visitor');
      await fillLabel(page, /e-?mail/i, s.email);
      await fillLabel(page, /^password/i, s.password);
      const again = page.getByLabel(/repeat|confirm/i);
      if (await again.count()) await again.first().fill(s.password);
      await submit(page, /create (an )?account|register|sign up/i, 'a "Create account" button');
      await expectSignedIn(page, 'a "Sign out" button: signed in once registered');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /checkout/i }), 'back on the checkout (h1 "Checkout") after registering');
    });

    step('pay-card', 'enter the address, pay by test card and pass the confirm step', async () => {
      const page = s.page;
      await fillAddress(page, { name: 'Vera Visitor', line1: '1 Test Street', city: 'Berlin', postal: '10115', country: 'DE' });
      const card = page.getByRole('main').getByRole('radio', { name: /card/i });
      await expectVisible(page, card, 'a payment method radio "Card"');
      await card.first().check();
      await fillCard(page, CONFIRM_CARD);
      await submit(page, /place order|pay/i, 'a "Place order" button');
      const code = page.getByRole('main').getByRole('textbox', { name: /code/i });
      await expectVisible(page, code, 'the payment confirm step with a field labelled "Confirmation code"');
      await capture(page, 'payment-confirm');
      await code.first().fill(CONFIRM_CODE);
      await submit(page, /confirm/i, 'a "Confirm payment" button');
    });

    step('confirmation', 'see the order confirmation', async () => {
      const page = s.page;
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /thank|confirmed|order placed|received/i }), 'an h1 "Thank you for your order!"');
      const text = await page.getByRole('main').innerText();
      const m = text.match(/order\s*(?:number|no\.?|#)?\s*:?\s*#?\s*([0-9a-f]{8}-[0-9a-f-]{27}|[A-Z0-9][A-Z0-9-]{5,})/i);
      assert.ok(m, `an order number on the confirmation page; page text: ${text.slice(0, 400)}`);
      s.orderRef = m[1];
      for (const p of [s.pick.first, s.pick.second]) {
        await expectVisible(page, page.getByRole('main').getByText(new RegExp(esc(p.title), 'i')), `the line "${p.title}" on the confirmation`);
      }
      await capture(page, 'confirmation');
    });

    step('account-order', 'find the order in the account, with its timeline', async () => {
      const page = s.page;
      await header(page, /^account$/i, 'the header "Account" link');
      await capture(page, 'account');
      const accountNav = page.getByRole('navigation', { name: /account/i }).last();
      await follow(page, /^orders$/i, 'an "Orders" link in the account menu', accountNav);
      const short = s.orderRef.slice(-8);
      await follow(page, new RegExp(esc(short), 'i'), `a link to order …${short} in "Your orders"`);
      const timeline = page.getByRole('region', { name: /timeline|history/i }).or(page.getByRole('list', { name: /timeline|history/i }));
      await expectVisible(page, timeline, 'the order timeline (a region or list named "History")');
      const tl = await timeline.first().innerText();
      assert.match(tl, /paid/i, `the timeline shows the payment; it reads: ${tl}`);
      for (const p of [s.pick.first, s.pick.second]) {
        await expectVisible(page, page.getByRole('main').getByText(new RegExp(esc(p.title), 'i')), `the line "${p.title}" on the order page`);
      }
      await capture(page, 'order-detail');
      await finish(s.ctx);
    });
  });
}
