// Shopping steps both journeys take: open a result, add to cart, fill the checkout.

import { esc, expectVisible, fillLabel, submit } from './ui.mjs';

/** "€1,234.50": how the pages show an amount in minor units (EUR, English). */
export function formatMoney(minor) {
  return (minor / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** From a results page, opens the product `p` ({title}) and checks its h1. */
export async function openResult(page, p) {
  const link = page.getByRole('main').getByRole('link', { name: new RegExp(esc(p.title), 'i') }).first();
  await expectVisible(page, link, `a result linking to "${p.title}"`);
  await Promise.all([page.waitForEvent('load'), link.click()]);
  await expectVisible(page, page.getByRole('heading', { level: 1, name: new RegExp(esc(p.title), 'i') }), `an h1 "${p.title}" on the product page`);
}

/** Presses "Add to cart" and checks that the header's cart link counts `count` items. */
export async function addToCart(page, count) {
  await submit(page, /add to cart/i, 'an "Add to cart" button');
  const cart = page.getByRole('banner').getByRole('link', { name: new RegExp(`cart\\D*\\b${count}\\b`, 'i') });
  await expectVisible(page, cart, `the header's cart link counting ${count} item(s)`);
}

/** Fills the checkout's shipping address. */
export async function fillAddress(page, a) {
  const main = page.getByRole('main');
  const name = main.getByLabel(/^(full )?name/i);
  if (await name.count()) await name.first().fill(a.name);
  await fillLabel(page, /^(address|street)/i, a.line1, main);
  await fillLabel(page, /^city/i, a.city, main);
  await fillLabel(page, /^(postal|post ?code|zip)/i, a.postal, main);
  const country = main.getByLabel(/^country/i).first();
  await expectVisible(page, country, 'a field labelled "Country"');
  if ((await country.evaluate((e) => e.tagName)) === 'SELECT') await country.selectOption(a.country);
  else await country.fill(a.country);
}

/** Fills card fields: number, expiry (one field or month and year) and CVC. */
export async function fillCard(page, number) {
  const main = page.getByRole('main');
  await fillLabel(page, /card number/i, number, main);
  const expiry = main.getByLabel(/expir/i);
  if ((await expiry.count()) === 1) {
    await expiry.fill('12/30');
  } else {
    await fillLabel(page, /month/i, '12', main);
    await fillLabel(page, /year/i, '2030', main);
  }
  await fillLabel(page, /cvc|cvv|security code/i, '123', main);
}
