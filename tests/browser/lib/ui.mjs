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

/** Presses a button of the page's main content (not the header's) with this name, and waits for the next page. */
export async function submit(page, name, what) {
  const button = page.getByRole('main').getByRole('button', { name }).first();
  await expectVisible(page, button, what || `a button named ${name}`);
  await Promise.all([page.waitForEvent('load'), button.click()]);
}

/** Presses a button or follows a link of the page's main content with this name. */
export async function press(page, name, what) {
  const main = page.getByRole('main');
  const target = main.getByRole('button', { name }).or(main.getByRole('link', { name })).first();
  await expectVisible(page, target, what || `a button or link named ${name}`);
  await Promise.all([page.waitForEvent('load'), target.click()]);
}

/** Follows a link of the page's main content with this name. */
export async function follow(page, name, what, scope) {
  const link = (scope || page.getByRole('main')).getByRole('link', { name }).first();
  await expectVisible(page, link, what || `a link named ${name}`);
  await Promise.all([page.waitForEvent('load'), link.click()]);
}

/** Follows a header link ("Account", "Cart", "Sign in", ...). */
export async function header(page, name, what) {
  const link = page.getByRole('banner').getByRole('link', { name }).first();
  await expectVisible(page, link, what || `a header link named ${name}`);
  await Promise.all([page.waitForEvent('load'), link.click()]);
}

/** Signs out with the header's "Sign out" button. */
export async function signOut(page) {
  const button = page.getByRole('banner').getByRole('button', { name: /sign out|log out/i }).first();
  await expectVisible(page, button, 'a "Sign out" button in the header');
  await Promise.all([page.waitForEvent('load'), button.click()]);
}

/** True once the header offers "Sign out". */
export async function expectSignedIn(page, what) {
  await expectVisible(page, page.getByRole('banner').getByRole('button', { name: /sign out|log out/i }), what || 'a "Sign out" button in the header (signed in)');
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
  await submit(page, /^(sign in|log in)$/i, 'a "Sign in" button');
}
