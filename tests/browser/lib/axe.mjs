// axe-core injected into a page; serious and critical violations fail the check.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const FAILING_IMPACTS = ['serious', 'critical'];

/** Runs axe on the page as it is; returns every violation (all impacts). */
export async function runAxe(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    // As a script tag's text would be blocked by the page's strict CSP; evaluate is not.
    await page.evaluate(AXE_SOURCE);
  }
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    return await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
  });
  return results.violations;
}

/** A readable report of violations, one block per rule with the offending elements. */
export function formatViolations(name, violations) {
  const lines = [];
  for (const v of violations) {
    lines.push(`  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
    for (const n of v.nodes.slice(0, 8)) {
      lines.push(`      at ${n.target.join(' ')}`);
      const why = (n.failureSummary || '').split('\n').map((l) => l.trim()).filter(Boolean);
      for (const w of why.slice(0, 4)) lines.push(`         ${w}`);
    }
    if (v.nodes.length > 8) lines.push(`      … and ${v.nodes.length - 8} more elements`);
  }
  return `${name}:\n${lines.join('\n')}`;
}

/**
 * Checks the page: prints every violation, throws on serious or critical ones.
 * Returns the violations for the caller's records.
 */
export async function checkA11y(page, name) {
  const violations = await runAxe(page);
  const failing = violations.filter((v) => FAILING_IMPACTS.includes(v.impact));
  const minor = violations.filter((v) => !FAILING_IMPACTS.includes(v.impact));
  if (minor.length) console.log(`# axe (not failing, moderate/minor) ${formatViolations(name, minor)}`);
  if (failing.length) {
    const report = formatViolations(`${name} (${page.url()})`, failing);
    console.log(`# axe FAILED ${report}`);
    throw new Error(`accessibility: ${failing.length} serious/critical axe violation(s) on ${report}`);
  }
  return violations;
}
