//! The catalog's tables: categories, products and every index over them (slugs, SKUs,
//! per-vendor and per-category membership, the sorted listing indexes). Functions take
//! the caller's transaction and keep the indexes consistent with the records; they never
//! decide who may do what.

use super::model::{Category, CategoryId, ListedProduct, Product, ProductId, ProductStatus};
use crate::auth::{VendorId, kv};
use crate::error::{Error, Result};
use crate::store::tables::{
    CATEGORY_ID_TO_ACTIVE_COUNT, CATEGORY_ID_TO_CATEGORY, CATEGORY_PRODUCT_TO_UNIT,
    CATEGORY_SLUG_TO_CATEGORY_ID, LISTING_NAME_TO_UNIT, LISTING_NEWEST_TO_UNIT,
    LISTING_PRICE_TO_UNIT, PRODUCT_ID_TO_PRODUCT, SLUG_TO_PRODUCT_ID, VENDOR_PRODUCT_TO_UNIT,
    VENDOR_SKU_TO_VARIANT,
};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use std::collections::HashMap;

// ---------- categories ----------

pub fn category(rtx: &ReadTransaction, id: CategoryId) -> Result<Option<Category>> {
    kv::read(rtx, CATEGORY_ID_TO_CATEGORY, &id.to_bytes())
}

pub fn category_in(wtx: &WriteTransaction, id: CategoryId) -> Result<Option<Category>> {
    kv::read_in(wtx, CATEGORY_ID_TO_CATEGORY, &id.to_bytes())
}

/// Every category (the tree is small: hundreds, not millions).
pub fn all_categories(rtx: &ReadTransaction) -> Result<Vec<Category>> {
    let Some(t) = kv::open_ro(rtx, CATEGORY_ID_TO_CATEGORY)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        out.push(crate::store::codec::decode(v.value())?);
    }
    Ok(out)
}

fn all_categories_in(wtx: &WriteTransaction) -> Result<Vec<Category>> {
    let t = wtx.open_table(CATEGORY_ID_TO_CATEGORY)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        out.push(crate::store::codec::decode(v.value())?);
    }
    Ok(out)
}

pub fn category_id_by_slug(rtx: &ReadTransaction, slug: &str) -> Result<Option<CategoryId>> {
    let Some(t) = kv::open_ro(rtx, CATEGORY_SLUG_TO_CATEGORY_ID)? else {
        return Ok(None);
    };
    Ok(t.get(slug.as_bytes())?
        .and_then(|v| id16(v.value()).map(CategoryId::from_bytes)))
}

pub fn category_slug_taken(wtx: &WriteTransaction, slug: &str) -> Result<Option<CategoryId>> {
    let t = wtx.open_table(CATEGORY_SLUG_TO_CATEGORY_ID)?;
    Ok(t.get(slug.as_bytes())?
        .and_then(|v| id16(v.value()).map(CategoryId::from_bytes)))
}

/// Writes a category and its slug index (dropping the old slug when it changed).
pub fn put_category(wtx: &WriteTransaction, old: Option<&Category>, c: &Category) -> Result<()> {
    let mut slugs = wtx.open_table(CATEGORY_SLUG_TO_CATEGORY_ID)?;
    if let Some(o) = old
        && o.slug != c.slug
    {
        slugs.remove(o.slug.as_bytes())?;
    }
    slugs.insert(c.slug.as_bytes(), c.id.to_bytes().as_slice())?;
    kv::put(wtx, CATEGORY_ID_TO_CATEGORY, &c.id.to_bytes(), c)
}

pub fn delete_category(wtx: &WriteTransaction, c: &Category) -> Result<()> {
    wtx.open_table(CATEGORY_SLUG_TO_CATEGORY_ID)?
        .remove(c.slug.as_bytes())?;
    wtx.open_table(CATEGORY_ID_TO_ACTIVE_COUNT)?
        .remove(c.id.to_bytes().as_slice())?;
    kv::delete(wtx, CATEGORY_ID_TO_CATEGORY, &c.id.to_bytes())
}

/// The category and its ancestors, nearest first. A broken chain (which the cycle check
/// prevents) stops rather than loops.
pub fn ancestry_in(wtx: &WriteTransaction, id: CategoryId) -> Result<Vec<CategoryId>> {
    let t = wtx.open_table(CATEGORY_ID_TO_CATEGORY)?;
    let mut out = vec![id];
    let mut cur = id;
    while out.len() < 64 {
        let Some(c) = kv::get::<Category>(&t, &cur.to_bytes())? else {
            break;
        };
        match c.parent {
            Some(p) if !out.contains(&p) => {
                out.push(p);
                cur = p;
            }
            _ => break,
        }
    }
    Ok(out)
}

pub fn has_children_in(wtx: &WriteTransaction, id: CategoryId) -> Result<bool> {
    Ok(all_categories_in(wtx)?.iter().any(|c| c.parent == Some(id)))
}

/// Products filed directly under `id`, whatever their status.
pub fn products_in_category_in(wtx: &WriteTransaction, id: CategoryId) -> Result<Vec<ProductId>> {
    let t = wtx.open_table(CATEGORY_PRODUCT_TO_UNIT)?;
    Ok(kv::prefixed_keys(&t, &id.to_bytes())?
        .iter()
        .filter_map(|k| id16(&k[16..]).map(ProductId::from_bytes))
        .collect())
}

/// `id` and every category below it.
pub fn subtree_in(wtx: &WriteTransaction, id: CategoryId) -> Result<Vec<CategoryId>> {
    let all = all_categories_in(wtx)?;
    let mut children: HashMap<CategoryId, Vec<CategoryId>> = HashMap::new();
    for c in &all {
        if let Some(p) = c.parent {
            children.entry(p).or_default().push(c.id);
        }
    }
    let mut out = vec![id];
    let mut i = 0;
    while i < out.len() && out.len() <= all.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(
                kids.iter()
                    .filter(|k| !out.contains(k))
                    .copied()
                    .collect::<Vec<_>>(),
            );
        }
        i += 1;
    }
    Ok(out)
}

pub fn active_counts(rtx: &ReadTransaction) -> Result<HashMap<CategoryId, u64>> {
    let Some(t) = kv::open_ro(rtx, CATEGORY_ID_TO_ACTIVE_COUNT)? else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for item in t.iter()? {
        let (k, v) = item?;
        if let Some(id) = id16(k.value()) {
            out.insert(CategoryId::from_bytes(id), v.value());
        }
    }
    Ok(out)
}

// ---------- products ----------

pub fn product(rtx: &ReadTransaction, id: ProductId) -> Result<Option<Product>> {
    kv::read(rtx, PRODUCT_ID_TO_PRODUCT, &id.to_bytes())
}

/// A product as listings read it (see [`ListedProduct`]).
pub fn listed_product(rtx: &ReadTransaction, id: ProductId) -> Result<Option<ListedProduct>> {
    kv::read(rtx, PRODUCT_ID_TO_PRODUCT, &id.to_bytes())
}

pub fn product_in(wtx: &WriteTransaction, id: ProductId) -> Result<Option<Product>> {
    kv::read_in(wtx, PRODUCT_ID_TO_PRODUCT, &id.to_bytes())
}

pub fn product_id_by_slug(rtx: &ReadTransaction, slug: &str) -> Result<Option<ProductId>> {
    let Some(t) = kv::open_ro(rtx, SLUG_TO_PRODUCT_ID)? else {
        return Ok(None);
    };
    Ok(t.get(slug.as_bytes())?
        .and_then(|v| id16(v.value()).map(ProductId::from_bytes)))
}

pub fn product_slug_owner(wtx: &WriteTransaction, slug: &str) -> Result<Option<ProductId>> {
    let t = wtx.open_table(SLUG_TO_PRODUCT_ID)?;
    Ok(t.get(slug.as_bytes())?
        .and_then(|v| id16(v.value()).map(ProductId::from_bytes)))
}

/// The product owning `sku` among `vendor`'s products, if any.
pub fn sku_owner(wtx: &WriteTransaction, vendor: VendorId, sku: &str) -> Result<Option<ProductId>> {
    let t = wtx.open_table(VENDOR_SKU_TO_VARIANT)?;
    let key = kv::concat(&vendor.to_bytes(), sku.as_bytes());
    Ok(t.get(key.as_slice())?
        .and_then(|v| id16(&v.value()[..16.min(v.value().len())]).map(ProductId::from_bytes)))
}

/// Writes a product and brings every index in line with it: slug, SKUs, vendor and
/// category membership, and (for active products) the listing indexes and category counts.
/// `old` is the record as stored before, `None` for a new product.
pub fn put_product(wtx: &WriteTransaction, old: Option<&Product>, p: &Product) -> Result<()> {
    let id = p.id.to_bytes();
    if let Some(o) = old {
        if o.slug != p.slug {
            wtx.open_table(SLUG_TO_PRODUCT_ID)?
                .remove(o.slug.as_bytes())?;
        }
        let mut skus = wtx.open_table(VENDOR_SKU_TO_VARIANT)?;
        for v in &o.variants {
            skus.remove(kv::concat(&o.vendor_id.to_bytes(), v.sku.as_bytes()).as_slice())?;
        }
        drop(skus);
        if o.category_id != p.category_id {
            wtx.open_table(CATEGORY_PRODUCT_TO_UNIT)?
                .remove(kv::concat(&o.category_id.to_bytes(), &id).as_slice())?;
        }
        if o.status == ProductStatus::Active {
            unindex(wtx, o)?;
        }
    }
    wtx.open_table(SLUG_TO_PRODUCT_ID)?
        .insert(p.slug.as_bytes(), id.as_slice())?;
    {
        let mut skus = wtx.open_table(VENDOR_SKU_TO_VARIANT)?;
        for v in &p.variants {
            let key = kv::concat(&p.vendor_id.to_bytes(), v.sku.as_bytes());
            let val = kv::concat(&id, &v.id.to_bytes());
            skus.insert(key.as_slice(), val.as_slice())?;
        }
    }
    wtx.open_table(VENDOR_PRODUCT_TO_UNIT)?
        .insert(kv::concat(&p.vendor_id.to_bytes(), &id).as_slice(), ())?;
    wtx.open_table(CATEGORY_PRODUCT_TO_UNIT)?
        .insert(kv::concat(&p.category_id.to_bytes(), &id).as_slice(), ())?;
    if p.status == ProductStatus::Active {
        index(wtx, p)?;
    }
    kv::put(wtx, PRODUCT_ID_TO_PRODUCT, &id, p)
}

/// Every scope an active product is listed under: the whole catalog, its vendor, its
/// category and each ancestor of it (so a category's list includes its descendants).
fn scopes(wtx: &WriteTransaction, p: &Product) -> Result<(Vec<[u8; 17]>, Vec<CategoryId>)> {
    let cats = ancestry_in(wtx, p.category_id)?;
    let mut out = vec![scope_all(), scope_vendor(p.vendor_id)];
    out.extend(cats.iter().map(|c| scope_category(*c)));
    Ok((out, cats))
}

pub fn index(wtx: &WriteTransaction, p: &Product) -> Result<()> {
    let (scopes, cats) = scopes(wtx, p)?;
    let mut newest = wtx.open_table(LISTING_NEWEST_TO_UNIT)?;
    let mut price = wtx.open_table(LISTING_PRICE_TO_UNIT)?;
    let mut name = wtx.open_table(LISTING_NAME_TO_UNIT)?;
    for s in &scopes {
        newest.insert(listing_key(s, &Sort::Newest.suffix(p)).as_slice(), ())?;
        price.insert(listing_key(s, &Sort::PriceAsc.suffix(p)).as_slice(), ())?;
        name.insert(listing_key(s, &Sort::Name.suffix(p)).as_slice(), ())?;
    }
    let mut counts = wtx.open_table(CATEGORY_ID_TO_ACTIVE_COUNT)?;
    for c in cats {
        let n = counts
            .get(c.to_bytes().as_slice())?
            .map(|v| v.value())
            .unwrap_or(0);
        counts.insert(c.to_bytes().as_slice(), n + 1)?;
    }
    Ok(())
}

pub fn unindex(wtx: &WriteTransaction, p: &Product) -> Result<()> {
    let (scopes, cats) = scopes(wtx, p)?;
    let mut newest = wtx.open_table(LISTING_NEWEST_TO_UNIT)?;
    let mut price = wtx.open_table(LISTING_PRICE_TO_UNIT)?;
    let mut name = wtx.open_table(LISTING_NAME_TO_UNIT)?;
    for s in &scopes {
        newest.remove(listing_key(s, &Sort::Newest.suffix(p)).as_slice())?;
        price.remove(listing_key(s, &Sort::PriceAsc.suffix(p)).as_slice())?;
        name.remove(listing_key(s, &Sort::Name.suffix(p)).as_slice())?;
    }
    let mut counts = wtx.open_table(CATEGORY_ID_TO_ACTIVE_COUNT)?;
    for c in cats {
        let n = counts
            .get(c.to_bytes().as_slice())?
            .map(|v| v.value())
            .unwrap_or(0);
        counts.insert(c.to_bytes().as_slice(), n.saturating_sub(1))?;
    }
    Ok(())
}

/// A vendor's products (any status), oldest first, after `after`, at most `limit`.
pub fn vendor_products(
    rtx: &ReadTransaction,
    vendor: VendorId,
    after: Option<ProductId>,
    limit: usize,
) -> Result<(Vec<ProductId>, bool)> {
    let Some(t) = kv::open_ro(rtx, VENDOR_PRODUCT_TO_UNIT)? else {
        return Ok((Vec::new(), false));
    };
    let prefix = vendor.to_bytes();
    let start = match after {
        Some(a) => kv::concat(&prefix, &a.to_bytes()),
        None => prefix.to_vec(),
    };
    let mut out = Vec::new();
    for item in t.range::<&[u8]>(start.as_slice()..)? {
        let (k, _) = item?;
        let k = k.value();
        if !k.starts_with(&prefix) {
            break;
        }
        let Some(id) = id16(&k[16..]).map(ProductId::from_bytes) else {
            continue;
        };
        if Some(id) == after {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(id);
    }
    Ok((out, false))
}

// ---------- listing keys ----------

/// How a list is ordered. Each has its own index; descending orders scan it backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

pub const NAME_KEY_LEN: usize = 32;

impl Sort {
    /// The part of the key after the scope: sort value ++ product id.
    pub fn suffix(&self, p: &Product) -> Vec<u8> {
        let mut k = Vec::with_capacity(16 + NAME_KEY_LEN);
        match self {
            Sort::Newest => {}
            Sort::PriceAsc | Sort::PriceDesc => {
                let amount = p.from_price().map(|m| m.amount).unwrap_or(0);
                k.extend_from_slice(&price_key(amount));
            }
            Sort::Name => k.extend_from_slice(&name_key(&p.title)),
        }
        k.extend_from_slice(&p.id.to_bytes());
        k
    }

    pub fn suffix_len(&self) -> usize {
        match self {
            Sort::Newest => 16,
            Sort::PriceAsc | Sort::PriceDesc => 24,
            Sort::Name => NAME_KEY_LEN + 16,
        }
    }

    pub fn descending(&self) -> bool {
        matches!(self, Sort::Newest | Sort::PriceDesc)
    }

    pub fn table(&self) -> kv::IndexTable {
        match self {
            Sort::Newest => LISTING_NEWEST_TO_UNIT,
            Sort::PriceAsc | Sort::PriceDesc => LISTING_PRICE_TO_UNIT,
            Sort::Name => LISTING_NAME_TO_UNIT,
        }
    }
}

/// Signed amounts ordered as unsigned big-endian bytes.
pub fn price_key(amount: i64) -> [u8; 8] {
    ((amount as u64) ^ (1 << 63)).to_be_bytes()
}

/// The first bytes of the lower-cased title, zero-padded: enough to order by name.
pub fn name_key(title: &str) -> [u8; NAME_KEY_LEN] {
    let mut out = [0u8; NAME_KEY_LEN];
    let lower = title.trim().to_lowercase();
    let mut n = 0;
    for c in lower.chars() {
        let mut buf = [0u8; 4];
        let b = c.encode_utf8(&mut buf).as_bytes();
        if n + b.len() > NAME_KEY_LEN {
            break;
        }
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    }
    out
}

pub fn scope_all() -> [u8; 17] {
    [0u8; 17]
}

pub fn scope_category(c: CategoryId) -> [u8; 17] {
    tagged(1, c.to_bytes())
}

pub fn scope_vendor(v: VendorId) -> [u8; 17] {
    tagged(2, v.to_bytes())
}

fn tagged(tag: u8, id: [u8; 16]) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = tag;
    out[1..].copy_from_slice(&id);
    out
}

pub fn listing_key(scope: &[u8; 17], suffix: &[u8]) -> Vec<u8> {
    kv::concat(scope, suffix)
}

/// One step of a listing scan: the keys of `scope` in `sort` order after `cursor`
/// (a suffix handed out before), within `[lo, hi)` suffix bounds for price ranges.
/// `visit` gets each product id with its suffix and returns false to stop.
pub fn scan_listing(
    rtx: &ReadTransaction,
    scope: &[u8; 17],
    sort: Sort,
    cursor: Option<&[u8]>,
    lo: Option<Vec<u8>>,
    hi: Option<Vec<u8>>,
    mut visit: impl FnMut(ProductId, &[u8]) -> Result<bool>,
) -> Result<()> {
    let Some(t) = kv::open_ro(rtx, sort.table())? else {
        return Ok(());
    };
    use std::ops::Bound::{Excluded, Included};
    let mut start = Included(listing_key(scope, lo.as_deref().unwrap_or(&[])));
    let mut end = match hi {
        Some(h) => Excluded(listing_key(scope, &h)),
        None => Excluded(next_prefix(scope)),
    };
    if let Some(c) = cursor {
        let k = listing_key(scope, c);
        if sort.descending() {
            end = Excluded(k);
        } else {
            start = Excluded(k);
        }
    }
    let range = t.range::<&[u8]>((as_slice(&start), as_slice(&end)))?;
    let len = sort.suffix_len();
    let mut step = |item: std::result::Result<
        (redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, ()>),
        redb::StorageError,
    >|
     -> Result<bool> {
        let (k, _) = item?;
        let k = k.value();
        if k.len() != 17 + len {
            return Err(Error::Storage("malformed listing key".into()));
        }
        let suffix = &k[17..];
        let id = id16(&suffix[len - 16..]).map(ProductId::from_bytes);
        match id {
            Some(id) => visit(id, suffix),
            None => Ok(true),
        }
    };
    if sort.descending() {
        for item in range.rev() {
            if !step(item)? {
                break;
            }
        }
    } else {
        for item in range {
            if !step(item)? {
                break;
            }
        }
    }
    Ok(())
}

fn as_slice(b: &std::ops::Bound<Vec<u8>>) -> std::ops::Bound<&[u8]> {
    match b {
        std::ops::Bound::Included(v) => std::ops::Bound::Included(v.as_slice()),
        std::ops::Bound::Excluded(v) => std::ops::Bound::Excluded(v.as_slice()),
        std::ops::Bound::Unbounded => std::ops::Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn next_prefix(prefix: &[u8; 17]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last < 0xff {
            v.push(last + 1);
            return v;
        }
    }
    vec![0xff; 18]
}

pub fn id16(b: &[u8]) -> Option<[u8; 16]> {
    b.get(..16).and_then(|s| s.try_into().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn price_keys_order_like_amounts() {
        let mut amounts = [5i64, -3, 0, i64::MAX, i64::MIN, 1999, 2000];
        let mut keys: Vec<_> = amounts.iter().map(|a| price_key(*a)).collect();
        amounts.sort();
        keys.sort();
        assert_eq!(
            keys,
            amounts.iter().map(|a| price_key(*a)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn name_keys_order_case_insensitively_and_truncate_on_char_boundaries() {
        assert!(name_key("apple") < name_key("Banana"));
        assert!(name_key("Zebra") > name_key("banana"));
        let long = name_key(&"€".repeat(20));
        assert_eq!(&long[..3], "€".as_bytes());
        assert_eq!(long[29], "€".as_bytes()[2]);
        assert_eq!(long[30], 0, "a half character is never stored");
        assert_eq!(long[31], 0, "a half character is never stored");
    }

    #[test]
    fn next_prefix_bounds_the_scope() {
        let s = scope_category(CategoryId::new());
        let n = next_prefix(&s);
        assert!(listing_key(&s, &[0xff; 40]) < n);
        assert!(s.to_vec() < n);
    }
}
