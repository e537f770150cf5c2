//! The catalog's types: categories, products with variants, warehouses, stock levels and
//! reservations as stored, plus the slug rules. Validation of what callers send lives in
//! `input.rs`; this file never touches a table.

use crate::auth::VendorId;
use crate::money::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

crate::id_type!(
    /// A node of the category tree.
    CategoryId
);
crate::id_type!(
    /// A product (what a vendor sells, with one or more variants).
    ProductId
);
crate::id_type!(
    /// One buyable variant of a product (a size, a colour).
    VariantId
);
crate::id_type!(
    /// A vendor's stock location.
    WarehouseId
);
crate::id_type!(
    /// Stock held for an order until it ships or is cancelled.
    ReservationId
);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    pub slug: String,
    pub parent: Option<CategoryId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: VariantId,
    pub sku: String,
    /// Option name → value, e.g. size → M, colour → blue.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: Money,
    #[serde(default)]
    pub compare_at_price: Option<Money>,
    #[serde(default)]
    pub weight_grams: Option<u32>,
}

/// An image attached to a product: `id` is the content hash of the original upload; the
/// file names (under `/media/`) of the original and its resized variants sit alongside so
/// that lists need no second lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductImage {
    pub id: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub original: String,
    #[serde(default)]
    pub thumbnail: String,
    #[serde(default)]
    pub card: String,
    #[serde(default)]
    pub full: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub vendor_id: VendorId,
    pub title: String,
    pub slug: String,
    /// Plain text; paragraphs separated by blank lines. Escaped wherever it is shown.
    pub description: String,
    pub category_id: CategoryId,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub status: ProductStatus,
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub images: Vec<ProductImage>,
    /// Bumped by every change; the ETag.
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a listing needs of a stored product: the same record decoded without its
/// description, variant options and timestamps, which lists never show (decoding them
/// was most of a list's cost).
#[derive(Debug, Deserialize)]
pub struct ListedProduct {
    pub id: ProductId,
    pub vendor_id: VendorId,
    pub title: String,
    pub slug: String,
    pub category_id: CategoryId,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub status: ProductStatus,
    pub variants: Vec<ListedVariant>,
    #[serde(default)]
    pub images: Vec<ProductImage>,
}

#[derive(Debug, Deserialize)]
pub struct ListedVariant {
    pub price: Money,
    #[serde(default)]
    pub compare_at_price: Option<Money>,
}

impl ListedProduct {
    /// The lowest variant price, as [`Product::from_price`].
    pub fn from_price(&self) -> Option<Money> {
        lowest(self.variants.iter().map(|v| v.price))
    }
}

/// The lowest of some prices: what lists show and sort by.
fn lowest(prices: impl Iterator<Item = Money>) -> Option<Money> {
    prices.min_by_key(|m| m.amount)
}

impl Product {
    /// The lowest variant price: what lists show and sort by.
    pub fn from_price(&self) -> Option<Money> {
        lowest(self.variants.iter().map(|v| v.price))
    }

    pub fn variant(&self, id: VariantId) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub vendor_id: VendorId,
    pub name: String,
    /// Short unique code per vendor, e.g. `BER-1`.
    pub code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Stock of one variant in one warehouse. `reserved` never exceeds `on_hand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub variant_id: VariantId,
    pub warehouse_id: WarehouseId,
    pub on_hand: i64,
    pub reserved: i64,
}

impl StockLevel {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// All stock of one product, versioned as a whole for optimistic concurrency.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub version: u64,
    pub levels: Vec<StockLevel>,
}

impl Inventory {
    pub fn available_of(&self, variant: VariantId) -> i64 {
        self.levels
            .iter()
            .filter(|l| l.variant_id == variant)
            .map(StockLevel::available)
            .sum()
    }

    pub fn total_available(&self) -> i64 {
        self.levels.iter().map(StockLevel::available).sum()
    }

    pub fn level_mut(&mut self, variant: VariantId, warehouse: WarehouseId) -> &mut StockLevel {
        let pos = self
            .levels
            .iter()
            .position(|l| l.variant_id == variant && l.warehouse_id == warehouse);
        let i = match pos {
            Some(i) => i,
            None => {
                self.levels.push(StockLevel {
                    variant_id: variant,
                    warehouse_id: warehouse,
                    on_hand: 0,
                    reserved: 0,
                });
                self.levels.len() - 1
            }
        };
        &mut self.levels[i]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Stock is held.
    Held,
    /// Given back (order cancelled or payment failed).
    Released,
    /// Shipped: the stock left the warehouse.
    Committed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedLine {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub warehouse_id: WarehouseId,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub lines: Vec<ReservedLine>,
    pub status: ReservationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A slug made from a title: lower-case ASCII letters and digits joined by single
/// hyphens; common Latin accents are folded (é → e), anything else separates words.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_dash = false;
    for c in text.chars().flat_map(fold) {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
        if out.len() >= 80 {
            break;
        }
    }
    // Only ASCII was pushed, so any byte index is a character boundary.
    out.truncate(80);
    out.trim_end_matches('-').to_string()
}

fn fold(c: char) -> Vec<char> {
    let s = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'Ç' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "i",
        'ñ' | 'Ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        '&' => " and ",
        _ => return vec![c],
    };
    s.chars().collect()
}

/// Whether `s` is a well-formed slug (what `slugify` produces), 1 to 100 characters.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("Crème Brûlée  Set & Co."),
            "creme-brulee-set-and-co"
        );
        assert_eq!(slugify("  --Hello, World!-- "), "hello-world");
        assert_eq!(slugify("日本"), "");
        assert_eq!(slugify("Größe 42"), "grosse-42");
        assert!(slugify(&"word ".repeat(50)).len() <= 80);
        assert!(is_slug("red-shoes-42"));
        for bad in ["", "Red", "red--shoes", "-red", "red-", "red shoes", "ré"] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert!(is_slug(&slugify("Any Title At All 2026")));
    }

    #[test]
    fn available_is_on_hand_minus_reserved_per_variant() {
        let v = VariantId::new();
        let (w1, w2) = (WarehouseId::new(), WarehouseId::new());
        let mut inv = Inventory::default();
        inv.level_mut(v, w1).on_hand = 5;
        inv.level_mut(v, w2).on_hand = 3;
        inv.level_mut(v, w2).reserved = 2;
        assert_eq!(inv.available_of(v), 6);
        assert_eq!(inv.available_of(VariantId::new()), 0);
        assert_eq!(inv.levels.len(), 2);
    }
}
