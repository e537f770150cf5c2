// axe-core's verdict on every main page a journey reached: serious or critical
// violations fail; moderate and minor ones are printed only.

import { describe, test } from 'node:test';
import { FAILING_IMPACTS, formatViolations } from '../lib/axe.mjs';
import { MAIN_PAGES, axeResults, layoutResults } from '../lib/pages.mjs';
import { GAPS } from '../lib/gaps.mjs';
import { STRICT } from '../lib/journey.mjs';

/** Skips a check listed in gaps.mjs (unless SOUK_BROWSER_STRICT=1); true when skipped. */
function known(t, key) {
  if (GAPS[key] && !STRICT) {
    t.skip(`known problem: ${GAPS[key]}`);
    return true;
  }
  return false;
}

export function registerAccessibility() {
  describe('accessibility (axe-core: no serious or critical violations)', () => {
    for (const name of MAIN_PAGES) {
      test(`axe: ${name}`, (t) => {
        const r = axeResults.get(name);
        if (known(t, `axe/${name}`)) return;
        if (!r) {
          t.skip(`the "${name}" page was not reached by a journey (see the skipped or failed step above)`);
          return;
        }
        if (r.error) throw new Error(`axe could not run on ${name} (${r.url}): ${r.error.message}`);
        const minor = r.violations.filter((v) => !FAILING_IMPACTS.includes(v.impact));
        if (minor.length) t.diagnostic(formatViolations(`${name}: moderate/minor (not failing)`, minor));
        const failing = r.violations.filter((v) => FAILING_IMPACTS.includes(v.impact));
        if (failing.length) {
          throw new Error(`${failing.length} serious/critical violation(s)\n${formatViolations(`${name} (${r.url})`, failing)}`);
        }
      });
    }
  });

  describe('responsive (no sideways scrolling on phones, 360 and 390 px wide)', () => {
    for (const name of MAIN_PAGES) {
      test(`layout: ${name}`, (t) => {
        const r = layoutResults.get(name);
        if (known(t, `layout/${name}`)) return;
        if (!r) {
          t.skip(`the "${name}" page was not reached by a journey (see the skipped or failed step above)`);
          return;
        }
        const wide = r.widths.filter((w) => w.scrollWidth > w.width);
        if (wide.length) {
          throw new Error(`${name} (${r.url}) scrolls sideways: ${wide.map((w) => `${w.scrollWidth} px of content in a ${w.width} px window`).join(', ')}`);
        }
      });
    }
  });
}
