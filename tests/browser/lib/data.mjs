// Test data chosen from the demo catalog through the API, so the journeys follow the
// demo generator (src/services/catalog/demo*.rs) instead of hard-coding its output.

/** "lether": one letter short of "leather", a material of the demo's Fashion products. */
export const TYPO_QUERY = 'lether';
export const CORRECTED = 'leather';
/** What journey 2 adds to its wallet, in minor units. */
export const WALLET_TOPUP = 50000;

/**
 * For the typo query: `first` is a product with more than one variant (to pick one),
 * `brand` its brand (the facet to filter by), `second` an in-stock product of another
 * vendor, `cheap` the cheapest in-stock one. Each: { slug, title, brand, vendor: {id, name}, variants }.
 */
export async function pickProducts(api) {
  const res = await api.get(`/api/v1/search?q=${encodeURIComponent(TYPO_QUERY)}&limit=50&facets=brand,vendor`);
  const understood = (res.query?.words || []).flatMap((w) => w.matches || []);
  if (!understood.includes(CORRECTED)) {
    throw new Error(`the demo data changed: search "${TYPO_QUERY}" no longer matches "${CORRECTED}" (understood: ${JSON.stringify(res.query)})`);
  }
  const details = [];
  for (const hit of res.items) {
    details.push(await api.get(`/api/v1/products/${encodeURIComponent(hit.slug)}`));
  }
  const inStock = (p) => p.variants.some((v) => v.in_stock);
  const first = details.find((p) => p.variants.filter((v) => v.in_stock).length > 1);
  if (!first) throw new Error(`no product with two in-stock variants among the hits for "${TYPO_QUERY}"`);
  const second = details.find((p) => p.vendor.id !== first.vendor.id && inStock(p));
  if (!second) throw new Error(`no in-stock product of a second vendor among the hits for "${TYPO_QUERY}"`);
  // For the wallet order: an in-stock product well under the top-up (shipping and tax on top).
  const cheap = details.filter(inStock).sort((a, b) => a.price.amount - b.price.amount)[0];
  if (cheap.price.amount > WALLET_TOPUP / 2) throw new Error(`no product under ${WALLET_TOPUP / 200} EUR among the hits for "${TYPO_QUERY}"`);
  return { first, second, cheap, brand: first.brand, hits: res.items.length };
}

/** The options of a variant as shown, e.g. { size: 'M' }, and its first option's value. */
export function variantChoice(product) {
  const candidates = product.variants.filter((v) => v.in_stock && Object.keys(v.options).length);
  // The second in-stock variant: a choice different from what the page preselects.
  const v = candidates[1] || candidates[0];
  const [option, value] = Object.entries(v.options)[0];
  return { variant: v, option, value };
}
