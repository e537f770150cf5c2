// Debian's chromium driven by playwright-core: never a browser that a tool downloads.

import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

/** The chromium to drive: $CHROMIUM, else what `which chromium` finds. */
export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      // not this name
    }
  }
  throw new Error('chromium not found: install Debian\'s `chromium` (apt-get install chromium) or set CHROMIUM');
}

/**
 * Launches headless chromium with a fresh profile. Returns { browser, newContext(opts), close() }.
 * Contexts ignore certificate errors: souk serves a self-signed certificate.
 */
export async function launchBrowser() {
  // playwright-core gives every launch a fresh temporary --user-data-dir of its own (and
  // refuses one passed in args), so no profile is ever shared or reused.
  const b = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    timeout: 60000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      '--ignore-certificate-errors',
    ],
  });
  const newContext = async (opts = {}) => {
    const ctx = await b.newContext({
      ignoreHTTPSErrors: true,
      viewport: DESKTOP,
      locale: 'en-US',
      timezoneId: 'UTC',
      ...opts,
    });
    // Uncaught script errors and CSP refusals: the pages' JavaScript is meant to work
    // under their own strict CSP. Journeys assert this list is empty at their end.
    ctx.scriptErrors = [];
    ctx.on('page', (page) => {
      page.on('pageerror', (e) => ctx.scriptErrors.push(`${page.url()}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && /content security policy|refused to/i.test(m.text())) ctx.scriptErrors.push(`${page.url()}: ${m.text()}`);
      });
    });
    ctx.setDefaultTimeout(Number(process.env.SOUK_BROWSER_TIMEOUT_MS || 15000));
    ctx.setDefaultNavigationTimeout(Number(process.env.SOUK_BROWSER_TIMEOUT_MS || 30000));
    return ctx;
  };
  const close = async () => {
    await b.close().catch(() => {});
  };
  return { browser: b, newContext, close };
}
