// Journeys are ordered steps sharing one browser page. A step that fails skips the
// steps after it (they depend on it); a step listed in gaps.mjs is skipped with its
// reason, and so are the steps after it, unless SOUK_BROWSER_STRICT=1 runs them anyway.

import { describe, test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GAPS } from './gaps.mjs';
import { SCREENSHOT_DIR } from './shots.mjs';

export const STRICT = !!process.env.SOUK_BROWSER_STRICT;

/**
 * journey('Journey 1', (step, state) => { step('id', 'what it does', async (t) => {...}) })
 * `state.page` (set by a step) is screenshotted into <screenshots>/failures when a step fails.
 */
export function journey(name, define) {
  const state = { blockedBy: null };
  describe(name, () => {
    define((id, title, fn) => {
      const key = `${name}/${id}`;
      test(`${id}: ${title}`, async (t) => {
        if (state.blockedBy) {
          t.skip(`depends on ${state.blockedBy}`);
          return;
        }
        const gap = GAPS[key];
        if (gap && !STRICT) {
          state.blockedBy = `skipped step "${id}" (${gap})`;
          t.skip(`page not ready: ${gap}`);
          return;
        }
        try {
          await fn(t);
        } catch (e) {
          state.blockedBy = `failed step "${id}"`;
          await saveFailure(state.page, `${name}-${id}`);
          throw e;
        }
      });
    }, state);
  });
  return state;
}

async function saveFailure(page, name) {
  if (!page || page.isClosed()) return;
  try {
    const dir = join(SCREENSHOT_DIR, 'failures');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name.replace(/[^A-Za-z0-9_-]+/g, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
    const text = (await page.locator('body').innerText({ timeout: 5000 }).catch(() => '')).slice(0, 1500);
    console.log(`# failed at ${page.url()}\n# screenshot: ${file}\n# page text:\n${text.replace(/^/gm, '#   ')}`);
  } catch (e) {
    console.log(`# (no failure screenshot: ${e.message})`);
  }
}

/** Throws a precise "page missing" message when a page answers with an error status. */
export async function gotoOk(page, url, what) {
  const res = await page.goto(url);
  const status = res ? res.status() : 0;
  if (status >= 400) {
    throw new Error(`${what}: GET ${new URL(page.url()).pathname} answered ${status}; expected the page to exist`);
  }
  return res;
}

/** Closes a journey's browser context; fails if a page threw or its CSP refused something. */
export async function finish(ctx) {
  const errors = ctx.scriptErrors || [];
  await ctx.close();
  if (errors.length) throw new Error(`script errors or CSP refusals on the way:\n  ${errors.join('\n  ')}`);
}
