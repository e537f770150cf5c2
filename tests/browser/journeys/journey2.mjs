// Journey 2, a returning customer: registers, sets up MFA on the security page (the
// secret read from the page, codes computed here as an authenticator app would), signs
// out and back in through the MFA challenge, tops up the wallet, orders paid by wallet,
// cancels the order and sees the refund in the wallet.

import assert from 'node:assert/strict';
import { journey, gotoOk } from '../lib/journey.mjs';
import { capture } from '../lib/pages.mjs';
import { pickProducts } from '../lib/data.mjs';
import { freshCode } from '../lib/totp.mjs';
import { clickAction, esc, expectVisible, fillLabel, parseMoney, search, signIn } from '../lib/ui.mjs';

const TOPUP_CARD = '4242424242424242';

/** The wallet balance as the wallet page shows it, in minor units. */
async function walletBalance(page) {
  const el = page.getByTestId('wallet-balance').or(page.getByText(/balance/i).locator('xpath=..'));
  await expectVisible(page, el, 'the wallet balance (text "Balance" with the amount)');
  const text = await el.first().innerText();
  const m = text.match(/balance[^\d-]*(-?[\d.,\s]+)/i) || [null, text];
  return parseMoney(m[1]);
}

export function registerJourney2(env) {
  journey('journey 2 (MFA, wallet, cancel and refund)', (step, state) => {
    const s = {};

    step('register', 'register on the register page', async () => {
      s.pick = await pickProducts(env.api);
      s.email = `mfa-${Date.now()}@example.com`;
      s.password = 'another-long-passphrase-9';
      s.ctx = await env.browser.newContext();
      const page = (state.page = s.page = await s.ctx.newPage());
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      await clickAction(page, /sign in|log in/i, 'a "Sign in" link in the header');
      await page.waitForLoadState('load');
      await capture(page, 'signin');
      await clickAction(page, /create (an )?account|register/i, 'a "Create an account" link on the sign-in page');
      await page.waitForLoadState('load');
      await capture(page, 'register');
      await fillLabel(page, /e-?mail/i, s.email);
      await fillLabel(page, /^(full )?name/i, 'Mona Factor');
      await fillLabel(page, /^password/i, s.password);
      const confirm = page.getByLabel(/confirm password|repeat password/i);
      if (await confirm.count()) await confirm.first().fill(s.password);
      await clickAction(page, /create (an )?account|register|sign up/i, 'a "Create account" button');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('button', { name: /sign out|log out/i }).or(page.getByRole('link', { name: /sign out|log out/i })), 'a "Sign out" control once registered');
    });

    step('mfa-setup', 'set up MFA on the security page', async () => {
      const page = s.page;
      await clickAction(page, /account/i, 'the account menu link');
      await page.waitForLoadState('load');
      await clickAction(page, /security/i, 'a "Security" link in the account');
      await page.waitForLoadState('load');
      await clickAction(page, /(set up|enable|turn on).*(two|2|mfa|authenticat)|(two|2).?(factor|step)/i, 'a "Set up two-factor authentication" button');
      await page.waitForLoadState('load');
      await expectVisible(page, page.locator('svg').filter({ has: page.locator('path, rect') }), 'the QR code as inline SVG');
      const text = await page.locator('main').innerText();
      const m = text.match(/\b((?:[A-Z2-7]{4}[ -]?){4,}[A-Z2-7]*)\b/);
      assert.ok(m, `the TOTP secret (base32) shown as text on the MFA setup page; page text: ${text.slice(0, 500)}`);
      s.secret = m[1].replace(/[ -]/g, '');
      const { code, step: used } = await freshCode(s.secret);
      s.lastStep = used;
      await fillLabel(page, /code/i, code);
      await clickAction(page, /verify|enable|confirm|turn on/i, 'a button to confirm the first code');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByText(/recovery codes?/i), 'the recovery codes shown once MFA is on');
      await capture(page, 'mfa-setup');
    });

    step('signin-mfa', 'sign out, then sign in through the MFA challenge', async () => {
      const page = s.page;
      await clickAction(page, /sign out|log out/i, 'a "Sign out" button');
      await page.waitForLoadState('load');
      await clickAction(page, /sign in|log in/i, 'a "Sign in" link');
      await page.waitForLoadState('load');
      await signIn(page, s.email, s.password);
      const codeField = page.getByLabel(/code/i);
      await expectVisible(page, codeField, 'the MFA challenge with a field labelled "Code"');
      const { code, step: used } = await freshCode(s.secret, s.lastStep);
      s.lastStep = used;
      await codeField.first().fill(code);
      await clickAction(page, /verify|continue|sign in|confirm/i, 'a button to submit the MFA code');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('button', { name: /sign out|log out/i }).or(page.getByRole('link', { name: /sign out|log out/i })), 'a "Sign out" control: signed in after the MFA challenge');
    });

    step('wallet-topup', 'top up the wallet with the test card', async () => {
      const page = s.page;
      await clickAction(page, /account/i, 'the account menu link');
      await page.waitForLoadState('load');
      await clickAction(page, /wallet/i, 'a "Wallet" link in the account');
      await page.waitForLoadState('load');
      s.balance0 = await walletBalance(page);
      await fillLabel(page, /amount/i, '500.00');
      const card = page.getByRole('radio', { name: /card/i });
      if (await card.count()) await card.first().check();
      await fillLabel(page, /card number/i, TOPUP_CARD);
      const expiry = page.getByLabel(/expir/i);
      if ((await expiry.count()) === 1) await expiry.fill('12/30');
      else {
        await fillLabel(page, /month/i, '12');
        await fillLabel(page, /year/i, '2030');
      }
      await fillLabel(page, /cvc|cvv|security code/i, '123');
      await clickAction(page, /top up|add (money|funds)/i, 'a "Top up" button');
      await page.waitForLoadState('load');
      s.balance1 = await walletBalance(page);
      assert.equal(s.balance1 - s.balance0, 50000, `the balance grew by 500.00 (was ${s.balance0}, now ${s.balance1})`);
      await capture(page, 'wallet');
    });

    step('order-wallet', 'order a product and pay by wallet', async () => {
      const page = s.page;
      const p = s.pick.second;
      await search(page, p.title);
      await page.getByRole('link', { name: new RegExp(esc(p.title), 'i') }).first().click();
      await page.waitForLoadState('load');
      await clickAction(page, /add to cart/i, 'an "Add to cart" button');
      await page.waitForLoadState('load');
      await page.getByRole('link', { name: /cart/i }).first().click();
      await page.waitForLoadState('load');
      await clickAction(page, /checkout|check out/i, 'a "Checkout" button or link');
      await page.waitForLoadState('load');
      await fillLabel(page, /address|street/i, '2 Wallet Way');
      await fillLabel(page, /city|town/i, 'Hamburg');
      await fillLabel(page, /postal|post ?code|zip/i, '20095');
      const country = page.getByLabel(/country/i).first();
      if ((await country.evaluate((e) => e.tagName)) === 'SELECT') await country.selectOption({ value: 'DE' }).catch(() => country.selectOption({ index: 1 }));
      else await country.fill('DE');
      const wallet = page.getByRole('radio', { name: /wallet/i });
      await expectVisible(page, wallet, 'a payment method radio "Wallet"');
      await wallet.first().check();
      await clickAction(page, /place order|pay/i, 'a "Place order" button');
      await page.waitForLoadState('load');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /thank|confirm|order placed|received/i }), 'an h1 confirming the order');
    });

    step('cancel', 'cancel the order from the account', async () => {
      const page = s.page;
      await clickAction(page, /account/i, 'the account menu link');
      await page.waitForLoadState('load');
      const orders = page.getByRole('link', { name: /orders/i });
      if (await orders.count()) {
        await orders.first().click();
        await page.waitForLoadState('load');
      }
      // The newest order comes first.
      const link = page.getByRole('main').getByRole('link', { name: /order|#|[0-9a-f]{8}/i });
      await expectVisible(page, link, 'a link to the order in the account\'s orders');
      await link.first().click();
      await page.waitForLoadState('load');
      await clickAction(page, /cancel/i, 'a "Cancel order" button on the order page');
      await page.waitForLoadState('load');
      const again = page.getByRole('button', { name: /yes|confirm|cancel order/i });
      if (await again.count()) {
        await again.first().click();
        await page.waitForLoadState('load');
      }
      await expectVisible(page, page.getByText(/cancel+ed/i), 'the order shown as cancelled');
    });

    step('refund', 'the wallet shows the refund', async () => {
      const page = s.page;
      await clickAction(page, /account/i, 'the account menu link');
      await page.waitForLoadState('load');
      await clickAction(page, /wallet/i, 'a "Wallet" link in the account');
      await page.waitForLoadState('load');
      // The refund is made right away for wallet payments; allow the page a few reloads.
      let balance = await walletBalance(page);
      for (let i = 0; i < 10 && balance !== s.balance1; i++) {
        await page.waitForTimeout(500);
        await page.reload();
        balance = await walletBalance(page);
      }
      assert.equal(balance, s.balance1, `the balance is back to ${s.balance1} after the refund (shows ${balance})`);
      await expectVisible(page, page.getByText(/refund/i), 'a refund line in the wallet transactions');
      await s.ctx.close();
    });
  });
}
