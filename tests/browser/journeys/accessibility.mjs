// axe-core's verdict on every main page a journey reached: serious or critical
// violations fail; moderate and minor ones are printed only.

import { describe, test } from 'node:test';
import { FAILING_IMPACTS, formatViolations } from '../lib/axe.mjs';
import { MAIN_PAGES, axeResults } from '../lib/pages.mjs';

export function registerAccessibility() {
  describe('accessibility (axe-core: no serious or critical violations)', () => {
    for (const name of MAIN_PAGES) {
      test(`axe: ${name}`, (t) => {
        const r = axeResults.get(name);
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
}
