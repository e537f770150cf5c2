//! What callers send to the catalog, and the checks that turn it into valid fields: every
//! bad field is reported at once as a 422 with its path. Checks that need the database
//! (slug and SKU uniqueness, the category existing) happen in the write transaction.

use super::model::{CategoryId, ProductImage, ProductStatus, VariantId, WarehouseId, is_slug};
use crate::auth::VendorId;
use crate::error::{Error, FieldError, Result};
use crate::money::{Currency, Money};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// `"field": null` and an absent field mean different things in an update: `Some(None)`
/// clears, `None` keeps.
fn double<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    pub name: String,
    pub slug: Option<String>,
    pub parent: Option<CategoryId>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "double")]
    pub parent: Option<Option<CategoryId>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// Given to keep an existing variant (and its stock); absent for a new one.
    pub id: Option<VariantId>,
    pub sku: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: Money,
    pub compare_at_price: Option<Money>,
    pub weight_grams: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Only an admin may name the vendor; a vendor's products are always its own.
    pub vendor_id: Option<VendorId>,
    pub title: String,
    pub slug: Option<String>,
    #[serde(default)]
    pub description: String,
    pub category_id: CategoryId,
    pub brand: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub status: Option<ProductStatus>,
    pub variants: Vec<VariantInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    pub id: String,
    #[serde(default)]
    pub alt: String,
}

/// Every field optional: what is present replaces the stored value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<CategoryId>,
    #[serde(default, deserialize_with = "double")]
    pub brand: Option<Option<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub status: Option<ProductStatus>,
    pub variants: Option<Vec<VariantInput>>,
    /// Reorders, relabels or drops images already uploaded to this product.
    pub images: Option<Vec<ImageInput>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseInput {
    pub name: String,
    pub code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelInput {
    pub variant_id: VariantId,
    pub warehouse_id: WarehouseId,
    pub on_hand: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryInput {
    /// The version read before; may come as `If-Match` instead.
    pub version: Option<u64>,
    pub levels: Vec<LevelInput>,
}

/// Collects field errors so that one answer lists them all.
#[derive(Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn push(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

/// A one-line text: trimmed, `min..=max` characters, no control characters.
pub fn line(c: &mut Checks, field: &str, raw: &str, min: usize, max: usize) -> String {
    let s = raw.trim();
    let n = s.chars().count();
    if n < min {
        c.push(
            field,
            if n == 0 { "required" } else { "too_short" },
            format!("needs at least {min} characters"),
        );
    } else if n > max {
        c.push(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        );
    } else if s.chars().any(char::is_control) {
        c.push(
            field,
            "invalid_characters",
            "must not contain control characters",
        );
    }
    s.to_string()
}

/// Plain text with paragraphs: line breaks and tabs allowed, other control characters not.
/// Line endings are normalised to `\n`.
pub fn text(c: &mut Checks, field: &str, raw: &str, max: usize) -> String {
    let s = raw.replace("\r\n", "\n").trim().to_string();
    if s.chars().count() > max {
        c.push(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        );
    } else if s
        .chars()
        .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
    {
        c.push(
            field,
            "invalid_characters",
            "must not contain control characters other than line breaks",
        );
    }
    s
}

pub fn slug(c: &mut Checks, field: &str, raw: &str) -> String {
    if !is_slug(raw) {
        c.push(
            field,
            "invalid_slug",
            "must be 1-100 lower-case letters and digits, words joined by single hyphens",
        );
    }
    raw.to_string()
}

/// Name → value pairs (attributes, variant options).
pub fn pairs(
    c: &mut Checks,
    field: &str,
    map: &BTreeMap<String, String>,
    max_entries: usize,
) -> BTreeMap<String, String> {
    if map.len() > max_entries {
        c.push(field, "too_many", format!("at most {max_entries} entries"));
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let key = line(c, &format!("{field}.{k}"), k, 1, 50);
        let value = line(c, &format!("{field}.{k}"), v, 1, 200);
        out.insert(key, value);
    }
    out
}

pub struct VariantRules {
    pub currency: Currency,
    pub max_variants: usize,
}

/// Checks a variant list: count, SKUs (well-formed, unique within the list), prices in the
/// marketplace's currency, `0 ≤ price ≤ compare_at_price`, weights.
pub fn variants(c: &mut Checks, list: &[VariantInput], rules: &VariantRules) -> Vec<VariantInput> {
    if list.is_empty() {
        c.push(
            "variants",
            "required",
            "a product needs at least one variant",
        );
    }
    if list.len() > rules.max_variants {
        c.push(
            "variants",
            "too_many",
            format!("at most {} variants", rules.max_variants),
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let f = |name: &str| format!("variants[{i}].{name}");
        let sku = v.sku.trim().to_string();
        if sku.is_empty()
            || sku.len() > 64
            || !sku
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            c.push(
                f("sku"),
                "invalid_sku",
                "must be 1-64 letters, digits, '-', '_' or '.'",
            );
        } else if list[..i]
            .iter()
            .any(|o| o.sku.trim().eq_ignore_ascii_case(&sku))
        {
            c.push(
                f("sku"),
                "duplicate",
                "another variant of this product has this SKU",
            );
        }
        if v.id.is_some() && list[..i].iter().any(|o| o.id == v.id) {
            c.push(f("id"), "duplicate", "this variant appears twice");
        }
        let options = pairs(c, &f("options"), &v.options, 10);
        if v.price.currency != rules.currency {
            c.push(
                f("price.currency"),
                "wrong_currency",
                format!("prices are in {}", rules.currency),
            );
        }
        if v.price.amount < 0 {
            c.push(f("price.amount"), "negative", "must be 0 or more");
        }
        if v.price.amount > 100_000_000_000 {
            c.push(
                f("price.amount"),
                "too_large",
                "must be at most 100000000000",
            );
        }
        if let Some(cmp) = v.compare_at_price {
            if cmp.currency != rules.currency {
                c.push(
                    f("compare_at_price.currency"),
                    "wrong_currency",
                    format!("prices are in {}", rules.currency),
                );
            } else if cmp.amount < v.price.amount {
                c.push(
                    f("compare_at_price.amount"),
                    "below_price",
                    "must be at least the price",
                );
            }
        }
        if let Some(w) = v.weight_grams
            && w > 1_000_000
        {
            c.push(
                f("weight_grams"),
                "too_large",
                "must be at most 1000000 (one tonne)",
            );
        }
        out.push(VariantInput {
            sku,
            options,
            ..v.clone()
        });
    }
    out
}

/// An image list in an update may only reorder, relabel or drop images already attached.
pub fn images(c: &mut Checks, list: &[ImageInput], current: &[ProductImage]) -> Vec<ProductImage> {
    let mut out = Vec::new();
    for (i, im) in list.iter().enumerate() {
        let alt = line(c, &format!("images[{i}].alt"), &im.alt, 0, 200);
        match current.iter().find(|p| p.id == im.id) {
            Some(p) if !out.iter().any(|o: &ProductImage| o.id == p.id) => {
                out.push(ProductImage { alt, ..p.clone() })
            }
            Some(_) => c.push(
                format!("images[{i}].id"),
                "duplicate",
                "this image appears twice",
            ),
            None => c.push(
                format!("images[{i}].id"),
                "unknown_image",
                "upload it with POST /api/v1/products/{id}/images first",
            ),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::EUR)
    }

    fn v(sku: &str, price: Money, cmp: Option<Money>) -> VariantInput {
        VariantInput {
            id: None,
            sku: sku.into(),
            options: BTreeMap::new(),
            price,
            compare_at_price: cmp,
            weight_grams: None,
        }
    }

    fn codes(list: &[VariantInput]) -> Vec<(String, String)> {
        let mut c = Checks::default();
        variants(
            &mut c,
            list,
            &VariantRules {
                currency: Currency::EUR,
                max_variants: 3,
            },
        );
        match c.finish() {
            Ok(()) => vec![],
            Err(Error::Validation(v)) => v.into_iter().map(|e| (e.field, e.code)).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn variant_rules() {
        assert!(codes(&[v("A-1", eur(100), Some(eur(100)))]).is_empty());
        assert_eq!(codes(&[]), vec![("variants".into(), "required".into())]);
        assert_eq!(
            codes(&[v("A", eur(-1), None)]),
            vec![("variants[0].price.amount".into(), "negative".into())]
        );
        assert_eq!(
            codes(&[v("A", eur(100), Some(eur(99)))]),
            vec![(
                "variants[0].compare_at_price.amount".into(),
                "below_price".into()
            )]
        );
        assert_eq!(
            codes(&[v("A", eur(1), None), v("a", eur(1), None)]),
            vec![("variants[1].sku".into(), "duplicate".into())]
        );
        assert_eq!(codes(&[v("a b", eur(1), None)])[0].1, "invalid_sku");
        let usd = Money::new(1, Currency::parse("USD").unwrap());
        assert_eq!(codes(&[v("A", usd, None)])[0].1, "wrong_currency");
        let four: Vec<_> = (0..4).map(|i| v(&format!("S{i}"), eur(1), None)).collect();
        assert_eq!(codes(&four)[0].1, "too_many");
    }

    #[test]
    fn text_fields() {
        let mut c = Checks::default();
        assert_eq!(line(&mut c, "t", "  Shoe  ", 1, 10), "Shoe");
        assert_eq!(text(&mut c, "d", "a\r\n\r\nb", 100), "a\n\nb");
        assert!(c.finish().is_ok());
        let mut c = Checks::default();
        line(&mut c, "t", "", 1, 10);
        line(&mut c, "u", "x\u{7}", 1, 10);
        line(&mut c, "v", &"x".repeat(11), 1, 10);
        text(&mut c, "d", "a\u{0}b", 100);
        let Err(Error::Validation(e)) = c.finish() else {
            panic!()
        };
        let got: Vec<_> = e.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(
            got,
            [
                "required",
                "invalid_characters",
                "too_long",
                "invalid_characters"
            ]
        );
    }
}
