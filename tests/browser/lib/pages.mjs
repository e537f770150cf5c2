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

/** name → { url, widths: [{ width, scrollWidth }] }: does the page scroll sideways on phones? */
export const layoutResults = new Map();

/** The narrowest phone the storefront is made for (issue 8: "from 360 px phones"). */
export const NARROW = { width: 360, height: 740 };

/** Screenshots the page at both widths and records axe's findings for it. */
export async function capture(page, name) {
  const before = page.viewportSize() || DESKTOP;
  for (const vp of [PHONE, DESKTOP]) {
    await page.setViewportSize(vp);
    await screenshot(page, name);
  }
  const widths = [];
  for (const vp of [NARROW, PHONE]) {
    await page.setViewportSize(vp);
    widths.push({ width: vp.width, scrollWidth: await page.evaluate(() => document.documentElement.scrollWidth) });
  }
  await page.setViewportSize(before);
  const url = page.url();
  layoutResults.set(name, { url, widths });
  try {
    axeResults.set(name, { url, violations: await runAxe(page) });
  } catch (e) {
    axeResults.set(name, { url, error: e });
  }
}
