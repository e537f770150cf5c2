//! Carts: a signed-in user's persistent cart, a guest's cart by opaque token, merging the
//! second into the first, and the cart as shown (grouped by vendor, current prices and
//! stock, flags for what changed, totals). It never reserves stock: checkout does.

use super::model::{Cart, CartItemId, CartLine};
use super::pricing::{self, PartTotals, ShippingRule};
use super::store::{self, CartOwner};
use crate::app::AppState;
use crate::auth::VendorId;
use crate::config::OrdersConfig;
use crate::error::{Error, FieldError, Result};
use crate::money::{Currency, Money};
use crate::services::catalog::inventory;
use crate::services::catalog::model::{Product, ProductId, ProductStatus, VariantId};
use crate::services::vendors::model::VendorStatus;
use redb::{ReadTransaction, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddInput {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityInput {
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CartLineView {
    pub id: CartItemId,
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub title: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub price_seen: Money,
    pub line_total: Money,
    pub available: i64,
    /// The price moved since the line was added: checkout refuses until the buyer has
    /// seen it (changing the line's quantity, or re-adding it, accepts the new price).
    pub price_changed: bool,
    pub insufficient_stock: bool,
    /// Archived product, or suspended vendor: it cannot be bought.
    pub purchasable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VendorGroup {
    pub vendor_id: VendorId,
    pub vendor_name: String,
    pub lines: Vec<CartLineView>,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct CartView {
    pub vendors: Vec<VendorGroup>,
    pub item_count: i64,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub prices_include_tax: bool,
    pub tax_rate_bp: u32,
    /// True when some line needs the buyer's attention before checkout.
    pub needs_review: bool,
}

/// A cart line resolved against the catalog as it is now.
pub(super) struct Resolved {
    pub line: CartLine,
    pub product: Option<Product>,
    pub vendor_ok: bool,
    pub vendor_name: String,
    /// The vendor's shipping rule (its settings, else the config defaults).
    pub shipping: ShippingRule,
    pub available: i64,
}

impl Resolved {
    pub fn price(&self) -> Option<Money> {
        self.product
            .as_ref()
            .and_then(|p| p.variant(self.line.variant_id))
            .map(|v| v.price)
    }

    pub fn purchasable(&self) -> bool {
        self.vendor_ok
            && self.price().is_some()
            && self
                .product
                .as_ref()
                .is_some_and(|p| p.status == ProductStatus::Active)
    }
}

/// Reads what the catalog says of each line, through a read or a write transaction.
pub(super) trait CatalogView {
    fn product(&self, id: ProductId) -> Result<Option<Product>>;
    fn available(&self, id: ProductId, v: VariantId) -> Result<i64>;
    fn vendor(&self, id: VendorId) -> Result<Option<crate::services::vendors::model::Vendor>>;
}

impl CatalogView for ReadTransaction {
    fn product(&self, id: ProductId) -> Result<Option<Product>> {
        crate::services::catalog::store::product(self, id)
    }
    fn available(&self, id: ProductId, v: VariantId) -> Result<i64> {
        Ok(inventory::inventory(self, id)?.available_of(v).max(0))
    }
    fn vendor(&self, id: VendorId) -> Result<Option<crate::services::vendors::model::Vendor>> {
        crate::services::vendors::store::get(self, id)
    }
}

impl CatalogView for WriteTransaction {
    fn product(&self, id: ProductId) -> Result<Option<Product>> {
        crate::services::catalog::store::product_in(self, id)
    }
    fn available(&self, id: ProductId, v: VariantId) -> Result<i64> {
        Ok(inventory::inventory_in(self, id)?.available_of(v).max(0))
    }
    fn vendor(&self, id: VendorId) -> Result<Option<crate::services::vendors::model::Vendor>> {
        crate::services::vendors::store::get_in(self, id)
    }
}

pub(super) fn resolve(
    cv: &impl CatalogView,
    cfg: &OrdersConfig,
    cart: &Cart,
) -> Result<Vec<Resolved>> {
    let mut out = Vec::with_capacity(cart.lines.len());
    let defaults = ShippingRule::defaults(cfg);
    for l in &cart.lines {
        let product = cv.product(l.product_id)?;
        let (vendor_ok, vendor_name, shipping) = match &product {
            Some(p) => match cv.vendor(p.vendor_id)? {
                Some(v) => (
                    v.status == VendorStatus::Active,
                    v.name,
                    ShippingRule::of_vendor(cfg, &v.shipping),
                ),
                None => (false, String::new(), defaults),
            },
            None => (false, String::new(), defaults),
        };
        out.push(Resolved {
            line: l.clone(),
            available: cv.available(l.product_id, l.variant_id)?,
            product,
            vendor_ok,
            vendor_name,
            shipping,
        });
    }
    Ok(out)
}

pub(super) fn currency(state: &AppState) -> Currency {
    crate::services::catalog::currency(state)
}

/// The cart as shown: lines grouped by vendor with totals at `tax_bp`.
pub(super) fn view(
    cfg: &OrdersConfig,
    currency: Currency,
    resolved: &[Resolved],
    tax_bp: u32,
) -> Result<CartView> {
    let mut groups: BTreeMap<VendorId, VendorGroup> = BTreeMap::new();
    let mut rules: BTreeMap<VendorId, ShippingRule> = BTreeMap::new();
    let mut needs_review = false;
    let mut count = 0;
    for r in resolved {
        let Some(p) = &r.product else {
            needs_review = true;
            continue;
        };
        let v = p.variant(r.line.variant_id);
        let unit = v.map(|v| v.price).unwrap_or(r.line.price_seen);
        let purchasable = r.purchasable();
        let price_changed = unit != r.line.price_seen;
        let insufficient = r.available < r.line.quantity;
        needs_review |= price_changed || insufficient || !purchasable;
        count += r.line.quantity;
        rules.insert(p.vendor_id, r.shipping);
        let g = groups.entry(p.vendor_id).or_insert_with(|| VendorGroup {
            vendor_id: p.vendor_id,
            vendor_name: r.vendor_name.clone(),
            lines: Vec::new(),
            subtotal: Money::zero(currency),
            shipping: Money::zero(currency),
            tax: Money::zero(currency),
            total: Money::zero(currency),
        });
        g.lines.push(CartLineView {
            id: r.line.id,
            product_id: p.id,
            variant_id: r.line.variant_id,
            title: p.title.clone(),
            sku: v.map(|v| v.sku.clone()).unwrap_or_default(),
            quantity: r.line.quantity,
            unit_price: unit,
            price_seen: r.line.price_seen,
            line_total: unit.checked_mul(r.line.quantity)?,
            available: r.available,
            price_changed,
            insufficient_stock: insufficient,
            purchasable,
        });
    }
    let mut totals = PartTotals {
        subtotal: Money::zero(currency),
        shipping: Money::zero(currency),
        tax: Money::zero(currency),
        total: Money::zero(currency),
    };
    for g in groups.values_mut() {
        let rule = rules
            .get(&g.vendor_id)
            .copied()
            .unwrap_or_else(|| ShippingRule::defaults(cfg));
        let t = pricing::part_totals(
            cfg,
            currency,
            g.lines
                .iter()
                .filter(|l| l.purchasable)
                .map(|l| (l.unit_price, l.quantity)),
            tax_bp,
            rule,
        )?;
        (g.subtotal, g.shipping, g.tax, g.total) = (t.subtotal, t.shipping, t.tax, t.total);
        totals.subtotal = totals.subtotal.checked_add(t.subtotal)?;
        totals.shipping = totals.shipping.checked_add(t.shipping)?;
        totals.tax = totals.tax.checked_add(t.tax)?;
        totals.total = totals.total.checked_add(t.total)?;
    }
    Ok(CartView {
        vendors: groups.into_values().collect(),
        item_count: count,
        subtotal: totals.subtotal,
        shipping: totals.shipping,
        tax: totals.tax,
        total: totals.total,
        prices_include_tax: cfg.prices_include_tax,
        tax_rate_bp: tax_bp,
        needs_review,
    })
}

/// The cart of `owner` as shown now: lines grouped by vendor with current prices and
/// stock, what changed since adding flagged, shipping by each vendor's rule, tax at the
/// default rate (checkout applies the shipping country's). What the storefront renders.
pub fn get(state: &AppState, owner: &CartOwner) -> Result<CartView> {
    let rtx = state.store.read()?;
    let cart = store::cart(&rtx, owner)?;
    let cfg = &state.config.orders;
    let resolved = resolve(&rtx, cfg, &cart)?;
    view(cfg, currency(state), &resolved, cfg.default_tax_rate_bp)
}

fn check_quantity(cfg: &OrdersConfig, q: i64) -> Result<()> {
    if (1..=cfg.max_line_quantity).contains(&q) {
        Ok(())
    } else {
        Err(Error::invalid(
            "quantity",
            "out_of_range",
            format!("must be between 1 and {}", cfg.max_line_quantity),
        ))
    }
}

/// Why a variant cannot go into a cart (422 with the reason), or its current price.
fn purchasable_price(
    wtx: &WriteTransaction,
    product_id: ProductId,
    variant_id: VariantId,
) -> Result<Money> {
    let bad = |field: &str, code: &str, msg: &str| {
        Error::Validation(vec![FieldError::new(field, code, msg)])
    };
    let p = crate::services::catalog::store::product_in(wtx, product_id)?
        .ok_or_else(|| bad("product_id", "unknown_product", "no such product"))?;
    let v = p.variant(variant_id).ok_or_else(|| {
        bad(
            "variant_id",
            "unknown_variant",
            "not a variant of this product",
        )
    })?;
    if p.status != ProductStatus::Active {
        return Err(bad(
            "product_id",
            "not_purchasable",
            "this product is not for sale",
        ));
    }
    let vendor = crate::services::vendors::store::get_in(wtx, p.vendor_id)?;
    if !vendor.is_some_and(|v| v.status == VendorStatus::Active) {
        return Err(bad(
            "product_id",
            "vendor_suspended",
            "this vendor is not selling at the moment",
        ));
    }
    Ok(v.price)
}

/// Adds units of a variant (to its line if there is one, accepting the current price).
pub async fn add(state: &AppState, owner: CartOwner, input: AddInput) -> Result<CartView> {
    let cfg = state.config.orders.clone();
    check_quantity(&cfg, input.quantity)?;
    let now = state.clock.now();
    let o = owner.clone();
    state
        .store
        .write(move |tx| {
            let mut cart = store::cart_in(tx, &o)?.unwrap_or_default();
            add_line(tx, &cfg, &mut cart, &input, now)?;
            store::put_cart(tx, &o, &cart)
        })
        .await?;
    get(state, &owner)
}

/// `input` added to `cart` as an add to cart does: the variant must be for sale, its
/// line (merged with one of the same variant) within the quantity bound, the cart within
/// its line bound; the line takes the current price.
fn add_line(
    wtx: &WriteTransaction,
    cfg: &OrdersConfig,
    cart: &mut Cart,
    input: &AddInput,
    now: time::OffsetDateTime,
) -> Result<()> {
    check_quantity(cfg, input.quantity)?;
    let price = purchasable_price(wtx, input.product_id, input.variant_id)?;
    match cart
        .lines
        .iter_mut()
        .find(|l| l.product_id == input.product_id && l.variant_id == input.variant_id)
    {
        Some(l) => {
            let q = l.quantity + input.quantity;
            check_quantity(cfg, q)?;
            l.quantity = q;
            l.price_seen = price;
        }
        None => {
            if cart.lines.len() >= cfg.max_cart_lines {
                return Err(Error::invalid(
                    "variant_id",
                    "cart_full",
                    format!("a cart holds at most {} lines", cfg.max_cart_lines),
                ));
            }
            cart.lines.push(CartLine {
                id: CartItemId::new(),
                product_id: input.product_id,
                variant_id: input.variant_id,
                quantity: input.quantity,
                price_seen: price,
                added_at: now,
            });
        }
    }
    Ok(())
}

/// The cart a "buy now" checkout orders: `items` checked one by one as adds to a cart
/// are, the errors naming the item (`items[1].quantity`). Nobody's stored cart is read
/// or changed.
pub(super) fn of_items(
    wtx: &WriteTransaction,
    cfg: &OrdersConfig,
    items: &[AddInput],
    now: time::OffsetDateTime,
) -> Result<Cart> {
    if items.is_empty() {
        return Err(Error::invalid(
            "items",
            "empty",
            "list at least one item, or leave items out to order the cart",
        ));
    }
    let mut cart = Cart::default();
    for (i, item) in items.iter().enumerate() {
        add_line(wtx, cfg, &mut cart, item, now).map_err(|e| match e {
            Error::Validation(fields) => Error::Validation(
                fields
                    .into_iter()
                    .map(|f| FieldError {
                        field: format!("items[{i}].{}", f.field),
                        ..f
                    })
                    .collect(),
            ),
            other => other,
        })?;
    }
    Ok(cart)
}

/// Sets a line's quantity (and accepts its current price).
pub async fn set_quantity(
    state: &AppState,
    owner: CartOwner,
    item: CartItemId,
    quantity: i64,
) -> Result<CartView> {
    check_quantity(&state.config.orders, quantity)?;
    let o = owner.clone();
    state
        .store
        .write(move |tx| {
            let mut cart = store::cart_in(tx, &o)?.unwrap_or_default();
            let line = cart
                .lines
                .iter_mut()
                .find(|l| l.id == item)
                .ok_or_else(|| Error::not_found("cart item"))?;
            line.price_seen = purchasable_price(tx, line.product_id, line.variant_id)?;
            line.quantity = quantity;
            store::put_cart(tx, &o, &cart)
        })
        .await?;
    get(state, &owner)
}

/// Removes a line from the cart.
pub async fn remove(state: &AppState, owner: CartOwner, item: CartItemId) -> Result<CartView> {
    let o = owner.clone();
    state
        .store
        .write(move |tx| {
            let mut cart = store::cart_in(tx, &o)?.unwrap_or_default();
            let before = cart.lines.len();
            cart.lines.retain(|l| l.id != item);
            if cart.lines.len() == before {
                return Err(Error::not_found("cart item"));
            }
            store::put_cart(tx, &o, &cart)
        })
        .await?;
    get(state, &owner)
}

/// Empties the cart.
pub async fn clear(state: &AppState, owner: CartOwner) -> Result<()> {
    state
        .store
        .write(move |tx| store::put_cart(tx, &owner, &Cart::default()))
        .await
}

/// Moves a guest's cart into a user's, in the caller's transaction: quantities of the
/// same variant add up (capped at the line limit), the guest cart is deleted. Returns
/// whether there was anything to merge.
pub fn merge_guest_cart(
    tx: &WriteTransaction,
    cfg: &OrdersConfig,
    guest_token: &str,
    user: crate::auth::UserId,
) -> Result<bool> {
    let guest = CartOwner::Guest(guest_token.to_string());
    let Some(g) = store::cart_in(tx, &guest)? else {
        return Ok(false);
    };
    let owner = CartOwner::User(user);
    let mut cart = store::cart_in(tx, &owner)?.unwrap_or_default();
    for gl in g.lines {
        let same = cart
            .lines
            .iter()
            .position(|l| l.product_id == gl.product_id && l.variant_id == gl.variant_id);
        match same {
            Some(i) => {
                let l = &mut cart.lines[i];
                l.quantity = (l.quantity + gl.quantity).min(cfg.max_line_quantity);
            }
            None if cart.lines.len() < cfg.max_cart_lines => cart.lines.push(gl),
            None => {}
        }
    }
    store::put_cart(tx, &owner, &cart)?;
    store::put_cart(tx, &guest, &Cart::default())?;
    Ok(true)
}

/// Merges a guest cart into a signed-in user's cart (the API does this when a signed-in
/// request still carries the guest's cart token, i.e. right after login).
pub async fn merge(state: &AppState, token: String, user: crate::auth::UserId) -> Result<bool> {
    let cfg = state.config.orders.clone();
    state
        .store
        .write(move |tx| merge_guest_cart(tx, &cfg, &token, user))
        .await
}

/// A new opaque guest cart token: 128 random bits, URL-safe.
pub fn new_guest_token() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token a client sent is used only if it looks like one we hand out.
pub fn valid_guest_token(t: &str) -> bool {
    (16..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
