// Screenshots for a person to look at, in $SOUK_SCREENSHOTS (default tests/browser/screenshots).

import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOT_DIR = resolve(process.env.SOUK_SCREENSHOTS || join(HERE, '..', 'screenshots'));

/** Saves a full-page screenshot as <dir>/<name>-<width>x<height>.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const vp = page.viewportSize();
  const file = join(SCREENSHOT_DIR, `${name}-${vp.width}x${vp.height}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
