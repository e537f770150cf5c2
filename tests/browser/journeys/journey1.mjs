// Journey 1, a new visitor: searches with a typo, filters by a facet, opens a product,
// picks a variant, adds to cart from two vendors, registers during checkout, pays with
// the test card that needs the confirm step, sees the confirmation, and finds the
// order with its timeline in the account.

import assert from 'node:assert/strict';
import { journey, gotoOk } from '../lib/journey.mjs';
import { capture } from '../lib/pages.mjs';
import { CORRECTED, TYPO_QUERY, pickProducts, variantChoice } from '../lib/data.mjs';
import { clickAction, esc, expectVisible, fillLabel, search } from '../lib/ui.mjs';

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
      const link = nav.getByRole('link', { name: /fashion/i });
      await expectVisible(page, link, 'a "Fashion" link in the category menu');
      await link.click();
      await page.waitForLoadState('load');
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
        `a "did you mean / showing results for ${CORRECTED}" notice`,
      );
      await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') }), `a result linking to "${s.pick.first.title}"`);
      await capture(page, 'search');
    });

    step('facet', 'filter the results by the brand facet', async () => {
      const page = s.page;
      const brand = s.pick.brand;
      const name = new RegExp(`^\\s*${esc(brand)}\\b`, 'i');
      const facet = page
        .getByRole('checkbox', { name })
        .or(page.getByRole('link', { name }))
        .first();
      await expectVisible(page, facet, `a brand facet "${brand}" (checkbox or link) on the search page`);
      const isCheckbox = (await facet.getAttribute('type')) === 'checkbox';
      if (isCheckbox) {
        await facet.check();
        // Without JavaScript a filter form has an apply button; with it, checking submits.
        const apply = page.getByRole('button', { name: /apply|filter|update/i });
        if (!/brand/i.test(page.url()) && (await apply.count())) await apply.first().click();
      } else {
        await facet.click();
      }
      await page.waitForURL((u) => [...u.searchParams.values()].some((v) => v.includes(brand)));
      await page.waitForLoadState('load');
      assert.equal(new URL(page.url()).searchParams.get('q'), TYPO_QUERY, 'the query is kept with the filter');
      await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') }), `"${s.pick.first.title}" among the filtered results`);
    });

    step('product', 'open the product page', async () => {
      const page = s.page;
      await page.getByRole('link', { name: new RegExp(esc(s.pick.first.title), 'i') }).first().click();
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: new RegExp(esc(s.pick.first.title), 'i') }), `an h1 "${s.pick.first.title}"`);
      await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(s.pick.first.vendor.name), 'i') }), `the vendor card linking to "${s.pick.first.vendor.name}"`);
      await capture(page, 'product');
    });

    step('variant', 'pick a variant', async () => {
      const page = s.page;
      const { option, value } = (s.choice = variantChoice(s.pick.first));
      const radio = page.getByRole('radio', { name: new RegExp(`^\\s*${esc(value)}\\b`, 'i') });
      const select = page.getByRole('combobox', { name: new RegExp(option, 'i') });
      await expectVisible(page, radio.or(select), `a "${option}" choice (radio "${value}" or a select labelled "${option}")`);
      if (await radio.count()) await radio.first().check();
      else await select.first().selectOption({ label: value }).catch(async () => select.first().selectOption({ value: s.choice.variant.id }));
    });

    step('add-first', 'add it to the cart', async () => {
      const page = s.page;
      await clickAction(page, /add to cart/i, 'an "Add to cart" button');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('link', { name: /cart.*1|1.*cart/i }), 'the header cart link showing 1 item');
    });

    step('add-second', `add a product of a second vendor (${'search by its name'})`, async () => {
      const page = s.page;
      const p = s.pick.second;
      await search(page, p.title);
      await page.getByRole('link', { name: new RegExp(esc(p.title), 'i') }).first().click();
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: new RegExp(esc(p.title), 'i') }), `an h1 "${p.title}"`);
      await clickAction(page, /add to cart/i, 'an "Add to cart" button');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('link', { name: /cart.*2|2.*cart/i }), 'the header cart link showing 2 items');
    });

    step('cart', 'the cart groups the lines by vendor', async () => {
      const page = s.page;
      await page.getByRole('link', { name: /cart/i }).first().click();
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /cart/i }), 'an h1 "Cart"');
      for (const p of [s.pick.first, s.pick.second]) {
        await expectVisible(page, page.getByRole('heading', { name: new RegExp(esc(p.vendor.name), 'i') }), `a vendor group heading "${p.vendor.name}"`);
        await expectVisible(page, page.getByRole('link', { name: new RegExp(esc(p.title), 'i') }), `a cart line "${p.title}"`);
      }
      await capture(page, 'cart');
    });

    step('checkout-register', 'check out and create an account on the way', async () => {
      const page = s.page;
      await clickAction(page, /checkout|check out/i, 'a "Checkout" button or link');
      await page.waitForLoadState('load');
      await capture(page, 'checkout');
      // A guest is offered to sign in, continue as guest, or create an account.
      const create = page.getByRole('link', { name: /create (an )?account|register/i }).or(page.getByRole('button', { name: /create (an )?account|register|continue as guest/i }));
      if (await create.count()) {
        await create.first().click();
        await page.waitForLoadState('load');
      }
      await fillLabel(page, /e-?mail/i, s.email);
      await fillLabel(page, /^(full )?name/i, 'Vera Visitor');
      await fillLabel(page, /^password/i, s.password);
      const confirm = page.getByLabel(/confirm password|repeat password/i);
      if (await confirm.count()) await confirm.first().fill(s.password);
    });

    step('address', 'enter the shipping address', async () => {
      const page = s.page;
      await fillLabel(page, /address|street/i, '1 Test Street');
      await fillLabel(page, /city|town/i, 'Berlin');
      await fillLabel(page, /postal|post ?code|zip/i, '10115');
      const country = page.getByLabel(/country/i).first();
      await expectVisible(page, country, 'a field labelled "Country"');
      if ((await country.evaluate((e) => e.tagName)) === 'SELECT') await country.selectOption({ value: 'DE' }).catch(() => country.selectOption({ index: 1 }));
      else await country.fill('DE');
    });

    step('pay-card', 'pay by test card and pass the confirm step', async () => {
      const page = s.page;
      const card = page.getByRole('radio', { name: /card/i });
      await expectVisible(page, card, 'a payment method radio "Test card"');
      await card.first().check();
      await fillLabel(page, /card number/i, CONFIRM_CARD);
      const expiry = page.getByLabel(/expir/i);
      if ((await expiry.count()) === 1) {
        await expiry.fill('12/30');
      } else {
        await fillLabel(page, /month/i, '12');
        await fillLabel(page, /year/i, '2030');
      }
      await fillLabel(page, /cvc|cvv|security code/i, '123');
      await clickAction(page, /place order|pay/i, 'a "Place order" button');
      await page.waitForLoadState('load');
      const code = page.getByLabel(/code/i);
      await expectVisible(page, code, 'the payment confirm step with a field labelled "Code"');
      await capture(page, 'payment-confirm');
      await code.first().fill(CONFIRM_CODE);
      await clickAction(page, /confirm/i, 'a "Confirm" button');
      await page.waitForLoadState('load');
    });

    step('confirmation', 'see the order confirmation', async () => {
      const page = s.page;
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /thank|confirm|order placed|received/i }), 'an h1 confirming the order');
      const text = await page.locator('main').innerText();
      const m = text.match(/order\s*(?:number|no\.?|#)?\s*:?\s*#?\s*([A-Z0-9][A-Z0-9-]{5,})/i);
      assert.ok(m, `an order number on the confirmation page; page text: ${text.slice(0, 400)}`);
      s.orderRef = m[1];
      await capture(page, 'confirmation');
    });

    step('account-order', 'find the order in the account with its timeline', async () => {
      const page = s.page;
      await clickAction(page, /account/i, 'the account menu link');
      await page.waitForLoadState('load');
      await capture(page, 'account');
      const orders = page.getByRole('link', { name: /orders/i });
      if (!/orders/.test(page.url()) && (await orders.count())) {
        await orders.first().click();
        await page.waitForLoadState('load');
      }
      const short = s.orderRef.slice(0, 8);
      const link = page.getByRole('link', { name: new RegExp(esc(short), 'i') });
      await expectVisible(page, link, `a link to order ${s.orderRef} in the account's orders`);
      await link.first().click();
      await page.waitForLoadState('load');
      const timeline = page.getByRole('list', { name: /timeline|history/i }).or(page.getByRole('region', { name: /timeline|history/i }));
      await expectVisible(page, timeline, 'the order timeline (a list or region named "Timeline")');
      const tl = await timeline.first().innerText();
      assert.match(tl, /paid/i, `the timeline shows the payment: ${tl}`);
      for (const p of [s.pick.first, s.pick.second]) {
        await expectVisible(page, page.getByText(new RegExp(esc(p.title), 'i')), `the line "${p.title}" on the order page`);
      }
      await capture(page, 'order-detail');
      await s.ctx.close();
    });
  });
}
