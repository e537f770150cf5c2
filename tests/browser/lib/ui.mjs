// Locators by role and label, as a person (or a screen reader) finds things. Each
// helper fails with a message that says which element was expected where.

export const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Waits for a locator to be visible, or throws saying what was expected on which page. */
export async function expectVisible(page, locator, what, timeout) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    throw new Error(`expected ${what} on ${new URL(page.url()).pathname}${new URL(page.url()).search}, not found`);
  }
  return locator.first();
}

/** The header's search box: role searchbox, or a combobox (suggestions) named "Search". */
export function searchBox(page) {
  return page.getByRole('searchbox').or(page.getByRole('combobox', { name: /search/i })).first();
}

export async function search(page, query) {
  const box = await expectVisible(page, searchBox(page), 'a search box (role searchbox, or combobox named "Search")');
  await box.fill(query);
  await Promise.all([page.waitForLoadState('load'), page.waitForURL((u) => u.searchParams.has('q')), box.press('Enter')]);
}

/** Clicks a link or a button with this accessible name. */
export async function clickAction(page, name, what) {
  const target = page.getByRole('button', { name }).or(page.getByRole('link', { name })).first();
  await expectVisible(page, target, what || `a link or button named ${name}`);
  await target.click();
}

/** Fills a field found by its label, saying which label was expected when it is absent. */
export async function fillLabel(page, label, value, scope = page) {
  const field = scope.getByLabel(label).first();
  await expectVisible(page, field, `a field labelled ${label}`);
  await field.fill(value);
  return field;
}

/** Minor units from a shown price like "€1,234.50" or "1.234,50 €". */
export function parseMoney(text) {
  const m = text.match(/-?\d[\d.,\s]*\d|\d/);
  if (!m) throw new Error(`no amount in ${JSON.stringify(text)}`);
  const digits = m[0].replace(/[^\d]/g, '');
  const hasDecimals = /[.,]\d{2}$/.test(m[0].trim());
  return Number(hasDecimals ? digits : `${digits}00`) * (m[0].startsWith('-') ? -1 : 1);
}

/** Submits the page's sign-in form. */
export async function signIn(page, email, password) {
  await fillLabel(page, /e-?mail/i, email);
  await fillLabel(page, /^password/i, password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: /sign in|log in/i }).first().click()]);
}
