// Steps that cannot pass yet because the storefront page they need is missing or
// incomplete in the committed tree. Key: "<journey>/<step id>", value: exactly what is
// missing, e.g.
//   'journey 1 (new visitor, test card)/product': 'GET /p/{slug} answers 404: no product page',
// Each one is reported as skipped (with this reason) and skips the steps after it in
// its journey. SOUK_BROWSER_STRICT=1 runs them anyway, to see what fails.

export const GAPS = {};
