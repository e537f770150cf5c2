// The main pages: screenshots at phone and desktop widths, and an axe run whose result
// the accessibility tests judge.

import { PHONE, DESKTOP } from './browser.mjs';
import { runAxe } from './axe.mjs';
import { screenshot } from './shots.mjs';

export const MAIN_PAGES = [
  'home',
  'category',
  'search',
  'product',
  'cart',
  'checkout',
  'payment-confirm',
  'confirmation',
  'account',
  'order-detail',
  'signin',
  'register',
  'mfa-setup',
  'wallet',
];

/** name → { url, violations } or { url, error } */
export const axeResults = new Map();

/** Screenshots the page at both widths and records axe's findings for it. */
export async function capture(page, name) {
  const before = page.viewportSize() || DESKTOP;
  for (const vp of [PHONE, DESKTOP]) {
    await page.setViewportSize(vp);
    await screenshot(page, name);
  }
  await page.setViewportSize(before);
  const url = page.url();
  try {
    axeResults.set(name, { url, violations: await runAxe(page) });
  } catch (e) {
    axeResults.set(name, { url, error: e });
  }
}
