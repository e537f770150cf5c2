// Journey 2, a returning customer: registers, sets up MFA on the security page (the
// secret read from the page, codes computed here as an authenticator app would), signs
// out and back in through the MFA challenge, tops up the wallet with the test card,
// orders paid by wallet, cancels the order and sees the refund in the wallet.

import assert from 'node:assert/strict';
import { finish, journey, gotoOk } from '../lib/journey.mjs';
import { capture } from '../lib/pages.mjs';
import { WALLET_TOPUP, pickProducts } from '../lib/data.mjs';
import { freshCode } from '../lib/totp.mjs';
import { expectSignedIn, expectVisible, fillLabel, follow, header, parseMoney, press, search, signIn, signOut, submit } from '../lib/ui.mjs';
import { addToCart, fillAddress, fillCard, formatMoney, openResult } from '../lib/shop.mjs';

const TOPUP_CARD = '4242424242424242';

/** The wallet balance as the wallet page shows it ("Balance: €12.00"), in minor units. */
async function walletBalance(page) {
  const el = page.getByRole('main').getByText(/^\s*balance\b/i).first();
  await expectVisible(page, el, 'the wallet balance ("Balance: …")');
  const text = await el.innerText();
  return parseMoney(text.replace(/^\s*balance\s*:?/i, ''));
}

async function accountSection(page, name) {
  await header(page, /^account$/i, 'the header "Account" link');
  const nav = page.getByRole('navigation', { name: /account/i }).last();
  await follow(page, name, `a ${name} link in the account menu`, nav);
}

export function registerJourney2(env) {
  journey('journey 2 (MFA, wallet, cancel and refund)', (step, state) => {
    const s = {};

    step('register', 'register from the sign-in page', async () => {
      s.pick = await pickProducts(env.api);
      s.email = `mfa-${Date.now()}@example.com`;
      s.password = 'another-long-passphrase-9';
      s.ctx = await env.browser.newContext();
      const page = (state.page = s.page = await s.ctx.newPage());
      await gotoOk(page, `${env.souk.url}/`, 'home page');
      await header(page, /^(sign in|log in)$/i, 'a "Sign in" link in the header');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /sign in/i }), 'an h1 "Sign in"');
      await capture(page, 'signin');
      await follow(page, /create (an )?account|register/i, 'a "Create an account" link on the sign-in page');
      await capture(page, 'register');
      await fillLabel(page, /^(full )?name/i, 'Mona Factor');
      await fillLabel(page, /e-?mail/i, s.email);
      await fillLabel(page, /^password/i, s.password);
      const again = page.getByLabel(/repeat|confirm/i);
      if (await again.count()) await again.first().fill(s.password);
      await submit(page, /create (an )?account|register|sign up/i, 'a "Create account" button');
      await expectSignedIn(page, 'a "Sign out" button: signed in once registered');
    });

    step('mfa-setup', 'turn on MFA on the security page', async () => {
      const page = s.page;
      await accountSection(page, /^security$/i);
      await press(page, /(set up|enable|turn on).*(two|2|mfa|authenticat)/i, 'a "Set up two-factor authentication" button or link');
      await expectVisible(page, page.getByRole('img', { name: /qr/i }), 'the QR code (an image named "QR code …", inline SVG)');
      const text = await page.getByRole('main').innerText();
      const m = text.match(/\b((?:[A-Z2-7]{4}[ -]?){4,}[A-Z2-7]*)\b/);
      assert.ok(m, `the TOTP secret (base32) shown as text on the MFA setup page; page text: ${text.slice(0, 500)}`);
      s.secret = m[1].replace(/[ -]/g, '');
      await capture(page, 'mfa-setup');
      const { code, step: used } = await freshCode(s.secret);
      s.lastStep = used;
      const codeBox = page.getByRole('main').getByRole('textbox', { name: /code/i });
      await expectVisible(page, codeBox, 'a text field labelled "6-digit code"');
      await codeBox.first().fill(code);
      await submit(page, /turn on|enable|verify|confirm/i, 'a "Turn on" button');
      await expectVisible(page, page.getByRole('heading', { name: /recovery codes?/i }), 'the recovery codes, shown once MFA is on');
    });

    step('signin-mfa', 'sign out, then sign in through the MFA challenge', async () => {
      const page = s.page;
      await signOut(page);
      await header(page, /^(sign in|log in)$/i, 'a "Sign in" link in the header');
      await signIn(page, s.email, s.password);
      const codeField = page.getByRole('main').getByRole('textbox', { name: /code/i });
      await expectVisible(page, codeField, 'the MFA challenge with a field labelled "…code…"');
      const { code, step: used } = await freshCode(s.secret, s.lastStep);
      s.lastStep = used;
      await codeField.first().fill(code);
      await submit(page, /verify|continue|confirm/i, 'a "Verify" button');
      await expectSignedIn(page, 'a "Sign out" button: signed in after the MFA challenge');
    });

    step('wallet-topup', `add ${formatMoney(WALLET_TOPUP)} to the wallet by test card`, async () => {
      const page = s.page;
      await accountSection(page, /^wallet$/i);
      s.balance0 = await walletBalance(page);
      const main = page.getByRole('main');
      await fillLabel(page, /^amount/i, (WALLET_TOPUP / 100).toFixed(2), main);
      const newCard = main.getByRole('radio', { name: /new card/i });
      if (await newCard.count()) await newCard.first().check();
      await fillCard(page, TOPUP_CARD);
      await submit(page, /add money|top up/i, 'an "Add money" button');
      s.balance1 = await walletBalance(page);
      assert.equal(s.balance1 - s.balance0, WALLET_TOPUP, `the balance grew by ${formatMoney(WALLET_TOPUP)} (was ${s.balance0}, now ${s.balance1} minor units)`);
      await capture(page, 'wallet');
    });

    step('order-wallet', 'order a product and pay by wallet', async () => {
      const page = s.page;
      const p = s.pick.cheap;
      await search(page, p.title);
      await openResult(page, p);
      await addToCart(page, 1);
      await header(page, /cart/i, 'the header "Cart" link');
      await follow(page, /check ?out/i, 'a "Check out" link or button');
      await fillAddress(page, { name: 'Mona Factor', line1: '2 Wallet Way', city: 'Hamburg', postal: '20095', country: 'DE' });
      const wallet = page.getByRole('main').getByRole('radio', { name: /wallet/i });
      await expectVisible(page, wallet, 'a payment method radio "Wallet"');
      await wallet.first().check();
      await submit(page, /place order|pay/i, 'a "Place order" button');
      await expectVisible(page, page.getByRole('heading', { level: 1, name: /thank|confirmed|order placed|received/i }), 'an h1 "Thank you for your order!"');
      const text = await page.getByRole('main').innerText();
      const m = text.match(/order\s*(?:number|no\.?|#)?\s*:?\s*#?\s*([0-9a-f]{8}-[0-9a-f-]{27})/i);
      assert.ok(m, `an order number on the confirmation page; page text: ${text.slice(0, 400)}`);
      s.orderRef = m[1];
    });

    step('cancel', 'cancel the order from the account', async () => {
      const page = s.page;
      await accountSection(page, /^orders$/i);
      const short = s.orderRef.slice(-8);
      await follow(page, new RegExp(short, 'i'), `a link to order …${short} in "Your orders"`);
      await submit(page, /cancel/i, 'a "Cancel the order" button on the order page');
      const yes = page.getByRole('main').getByRole('button', { name: /yes|confirm/i });
      if (await yes.count()) await submit(page, /yes|confirm/i);
      await expectVisible(page, page.getByText(/cancell?ed/i), 'the order shown as cancelled');
    });

    step('refund', 'the wallet shows the refund', async () => {
      const page = s.page;
      await accountSection(page, /^wallet$/i);
      // A wallet payment is refunded in the cancel's own transaction; allow a few reloads anyway.
      let balance = await walletBalance(page);
      for (let i = 0; i < 10 && balance !== s.balance1; i++) {
        await page.waitForTimeout(500);
        await page.reload();
        balance = await walletBalance(page);
      }
      assert.equal(balance, s.balance1, `the balance is back to ${s.balance1} after the refund (shows ${balance})`);
      await expectVisible(page, page.getByRole('main').getByText(/refund/i), 'a refund line in the wallet history');
      await finish(s.ctx);
    });
  });
}
