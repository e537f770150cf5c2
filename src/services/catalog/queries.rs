//! The catalog's reads: the category tree, one product (by id or slug) and product lists
//! with filters, sorts and cursors, each on one MVCC snapshot. Decides what each caller
//! may see (drafts to their vendor, nothing of a suspended vendor to customers); never writes.

use super::inventory;
use super::model::{
    Category, CategoryId, Inventory, ListedProduct, Product, ProductId, ProductStatus, Variant,
    VariantId, WarehouseId,
};
use super::store::{self, Sort};
use crate::app::AppState;
use crate::auth::{Principal, VendorId, kv};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::services::vendors::model::{Vendor, VendorStatus};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::ReadTransaction;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct CategoryView {
    pub id: CategoryId,
    pub name: String,
    pub slug: String,
    pub parent: Option<CategoryId>,
    /// Slugs from the root, e.g. `/home/kitchen/knives`.
    pub path: String,
    pub depth: usize,
    /// Active products in this category and below it.
    pub product_count: u64,
}

fn category_views(rtx: &ReadTransaction) -> Result<Vec<CategoryView>> {
    let all = store::all_categories(rtx)?;
    let counts = store::active_counts(rtx)?;
    let by_id: HashMap<CategoryId, &Category> = all.iter().map(|c| (c.id, c)).collect();
    let mut out: Vec<CategoryView> = all
        .iter()
        .map(|c| {
            let mut chain = vec![c.slug.as_str()];
            let mut cur = c.parent;
            while let Some(p) = cur.and_then(|id| by_id.get(&id)) {
                if chain.len() > all.len() {
                    break;
                }
                chain.push(p.slug.as_str());
                cur = p.parent;
            }
            chain.reverse();
            CategoryView {
                id: c.id,
                name: c.name.clone(),
                slug: c.slug.clone(),
                parent: c.parent,
                path: format!("/{}", chain.join("/")),
                depth: chain.len() - 1,
                product_count: counts.get(&c.id).copied().unwrap_or(0),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One category's view from its ancestors alone: what a product page needs, without
/// reading the whole tree on every request.
fn category_view_of(rtx: &ReadTransaction, id: CategoryId) -> Result<Option<CategoryView>> {
    let Some(c) = store::category(rtx, id)? else {
        return Ok(None);
    };
    let mut chain = vec![c.slug.clone()];
    let mut cur = c.parent;
    while let Some(pid) = cur {
        let Some(parent) = store::category(rtx, pid)? else {
            break;
        };
        if chain.len() > 64 {
            break;
        }
        chain.push(parent.slug);
        cur = parent.parent;
    }
    chain.reverse();
    let product_count = match kv::open_ro(rtx, crate::store::tables::CATEGORY_ID_TO_ACTIVE_COUNT)? {
        Some(t) => t
            .get(id.to_bytes().as_slice())?
            .map(|v| v.value())
            .unwrap_or(0),
        None => 0,
    };
    Ok(Some(CategoryView {
        id: c.id,
        name: c.name,
        slug: c.slug,
        parent: c.parent,
        path: format!("/{}", chain.join("/")),
        depth: chain.len() - 1,
        product_count,
    }))
}

/// The whole tree, parents before children (ordered by path).
pub fn categories(state: &AppState) -> Result<Vec<CategoryView>> {
    category_views(&state.store.read()?)
}

pub fn category(state: &AppState, id: CategoryId) -> Result<CategoryView> {
    category_views(&state.store.read()?)?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| Error::not_found("category"))
}

/// A category by id or slug.
pub fn resolve_category(rtx: &ReadTransaction, key: &str) -> Result<Option<CategoryId>> {
    if let Ok(u) = uuid::Uuid::try_parse(key) {
        let id = CategoryId(u);
        return Ok(store::category(rtx, id)?.map(|_| id));
    }
    store::category_id_by_slug(rtx, key)
}

#[derive(Debug, Clone, Serialize)]
pub struct VendorSummary {
    pub id: VendorId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    pub id: String,
    pub alt: String,
    pub original: String,
    pub thumbnail: String,
    pub card: String,
    pub full: String,
}

#[derive(Debug, Serialize)]
pub struct VariantView {
    pub id: VariantId,
    pub sku: String,
    pub options: BTreeMap<String, String>,
    pub price: Money,
    pub compare_at_price: Option<Money>,
    pub weight_grams: Option<u32>,
    pub in_stock: bool,
}

#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: ProductId,
    pub slug: String,
    pub title: String,
    /// Plain text as the vendor wrote it.
    pub description: String,
    /// The same text, HTML-escaped, paragraphs in `<p>`, single line breaks as `<br>`.
    pub description_html: String,
    pub category: Option<CategoryView>,
    pub brand: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub status: ProductStatus,
    pub vendor: VendorSummary,
    pub price: Option<Money>,
    pub variants: Vec<VariantView>,
    pub images: Vec<ImageView>,
    /// `in_stock`, `low_stock` (5 or fewer left) or `out_of_stock`.
    pub stock_status: &'static str,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A list item: what a product card needs.
#[derive(Debug, Serialize)]
pub struct ProductSummary {
    pub id: ProductId,
    pub slug: String,
    pub title: String,
    pub brand: Option<String>,
    pub price: Option<Money>,
    pub compare_at_price: Option<Money>,
    pub category_id: CategoryId,
    pub vendor: VendorSummary,
    pub image: Option<ImageView>,
    pub in_stock: bool,
    pub status: ProductStatus,
}

pub fn media_url(file: &str) -> String {
    if file.is_empty() {
        String::new()
    } else {
        format!("/media/{file}")
    }
}

fn image_view(i: &super::model::ProductImage) -> ImageView {
    ImageView {
        id: i.id.clone(),
        alt: i.alt.clone(),
        original: media_url(&i.original),
        thumbnail: media_url(&i.thumbnail),
        card: media_url(&i.card),
        full: media_url(&i.full),
    }
}

/// Escapes text for HTML and turns blank-line-separated paragraphs into `<p>`s.
pub fn paragraphs_html(text: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str("<p>");
        for (i, line) in para.lines().enumerate() {
            if i > 0 {
                out.push_str("<br>");
            }
            crate::html::push_escaped(&mut out, line);
        }
        out.push_str("</p>");
    }
    out
}

fn stock_status(inv: &Inventory) -> &'static str {
    match inv.total_available() {
        n if n <= 0 => "out_of_stock",
        n if n <= 5 => "low_stock",
        _ => "in_stock",
    }
}

/// Vendors looked up once per request: lists show few vendors many times.
struct Vendors<'a> {
    rtx: &'a ReadTransaction,
    seen: HashMap<VendorId, Option<Vendor>>,
}

impl<'a> Vendors<'a> {
    fn new(rtx: &'a ReadTransaction) -> Self {
        Vendors {
            rtx,
            seen: HashMap::new(),
        }
    }

    fn get(&mut self, id: VendorId) -> Result<Option<&Vendor>> {
        if !self.seen.contains_key(&id) {
            let v = crate::services::vendors::store::get(self.rtx, id)?;
            self.seen.insert(id, v);
        }
        Ok(self.seen.get(&id).and_then(Option::as_ref))
    }

    fn summary(&mut self, id: VendorId) -> Result<VendorSummary> {
        Ok(VendorSummary {
            id,
            name: self.get(id)?.map(|v| v.name.clone()).unwrap_or_default(),
        })
    }

    fn active(&mut self, id: VendorId) -> Result<bool> {
        Ok(self
            .get(id)?
            .is_some_and(|v| v.status == VendorStatus::Active))
    }
}

fn owns(viewer: Option<&Principal>, p: &Product) -> bool {
    viewer.is_some_and(|v| v.require_vendor_of(p.vendor_id).is_ok())
}

/// One product by id or slug as `viewer` may see it, with an ETag of its state. Drafts
/// are their vendor's (and admins'); archived products stay readable (orders link to
/// them); a suspended vendor's products are hidden from everyone else.
pub fn product_for(
    state: &AppState,
    viewer: Option<&Principal>,
    key: &str,
) -> Result<(ProductView, String)> {
    let rtx = state.store.read()?;
    let id = match uuid::Uuid::try_parse(key) {
        Ok(u) => ProductId(u),
        Err(_) => {
            store::product_id_by_slug(&rtx, key)?.ok_or_else(|| Error::not_found("product"))?
        }
    };
    let p = store::product(&rtx, id)?.ok_or_else(|| Error::not_found("product"))?;
    let mut vendors = Vendors::new(&rtx);
    if !owns(viewer, &p) && (p.status == ProductStatus::Draft || !vendors.active(p.vendor_id)?) {
        return Err(Error::not_found("product"));
    }
    let inv = inventory::inventory(&rtx, p.id)?;
    let category = category_view_of(&rtx, p.category_id)?;
    let etag = format!("\"{}.{}\"", p.version, inv.version);
    let view = ProductView {
        id: p.id,
        slug: p.slug.clone(),
        title: p.title.clone(),
        description_html: paragraphs_html(&p.description),
        description: p.description.clone(),
        category,
        brand: p.brand.clone(),
        attributes: p.attributes.clone(),
        status: p.status,
        vendor: vendors.summary(p.vendor_id)?,
        price: p.from_price(),
        variants: p.variants.iter().map(|v| variant_view(v, &inv)).collect(),
        images: p.images.iter().map(image_view).collect(),
        stock_status: stock_status(&inv),
        version: p.version,
        created_at: crate::clock::rfc3339(p.created_at),
        updated_at: crate::clock::rfc3339(p.updated_at),
    };
    Ok((view, etag))
}

fn variant_view(v: &Variant, inv: &Inventory) -> VariantView {
    VariantView {
        id: v.id,
        sku: v.sku.clone(),
        options: v.options.clone(),
        price: v.price,
        compare_at_price: v.compare_at_price,
        weight_grams: v.weight_grams,
        in_stock: inv.available_of(v.id) > 0,
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SortParam {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

/// `GET /products` parameters. `attributes=colour:red,size:M` keeps products having every
/// pair; `category` takes an id or a slug and includes its descendants.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub category: Option<String>,
    pub vendor: Option<VendorId>,
    pub brand: Option<String>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub attributes: Option<String>,
    pub in_stock: Option<bool>,
    pub sort: Option<SortParam>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    pub include_total: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct ProductList {
    pub items: Vec<ProductSummary>,
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

struct Filters {
    vendor: Option<VendorId>,
    brand: Option<String>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    attributes: Vec<(String, String)>,
    in_stock: bool,
}

impl Filters {
    fn keep(
        &self,
        p: &ListedProduct,
        rtx: &ReadTransaction,
        vendors: &mut Vendors<'_>,
    ) -> Result<bool> {
        if p.status != ProductStatus::Active {
            return Ok(false);
        }
        if self.vendor.is_some_and(|v| v != p.vendor_id) {
            return Ok(false);
        }
        if let Some(b) = &self.brand
            && !p
                .brand
                .as_deref()
                .is_some_and(|pb| pb.eq_ignore_ascii_case(b))
        {
            return Ok(false);
        }
        let price = p.from_price().map(|m| m.amount).unwrap_or(0);
        if self.price_min.is_some_and(|m| price < m) || self.price_max.is_some_and(|m| price > m) {
            return Ok(false);
        }
        for (k, v) in &self.attributes {
            if !p
                .attributes
                .get(k)
                .is_some_and(|pv| pv.eq_ignore_ascii_case(v))
            {
                return Ok(false);
            }
        }
        if !vendors.active(p.vendor_id)? {
            return Ok(false);
        }
        if self.in_stock && inventory::inventory(rtx, p.id)?.total_available() <= 0 {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Active products of active vendors, filtered, sorted and paged. A page may hold fewer
/// than `limit` items when rare filters hit the scan budget; `next_cursor` then continues
/// where the scan stopped, and is `None` only at the true end.
pub fn list(state: &AppState, q: ListQuery) -> Result<ProductList> {
    let limit = crate::services::PageQuery {
        cursor: None,
        limit: q.limit,
    }
    .limit()?;
    let sort = match q.sort.unwrap_or_default() {
        SortParam::Newest => Sort::Newest,
        SortParam::PriceAsc => Sort::PriceAsc,
        SortParam::PriceDesc => Sort::PriceDesc,
        SortParam::Name => Sort::Name,
    };
    let mut attributes = Vec::new();
    if let Some(a) = &q.attributes {
        for pair in a.split(',').filter(|s| !s.is_empty()) {
            let Some((k, v)) = pair.split_once(':') else {
                return Err(Error::invalid(
                    "attributes",
                    "invalid",
                    "use name:value pairs separated by commas",
                ));
            };
            attributes.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if let (Some(a), Some(b)) = (q.price_min, q.price_max)
        && a > b
    {
        return Err(Error::invalid(
            "price_max",
            "below_min",
            "must be at least price_min",
        ));
    }
    let rtx = state.store.read()?;
    let scope = match (&q.category, q.vendor) {
        (Some(c), _) => {
            let id = resolve_category(&rtx, c)?.ok_or_else(|| {
                Error::invalid("category", "unknown_category", "no such category")
            })?;
            store::scope_category(id)
        }
        (None, Some(v)) => store::scope_vendor(v),
        (None, None) => store::scope_all(),
    };
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c, sort)?),
    };
    // With a price sort the range itself narrows to the asked prices.
    let (lo, hi) = if matches!(sort, Sort::PriceAsc | Sort::PriceDesc) {
        (
            q.price_min.map(|m| store::price_key(m).to_vec()),
            q.price_max
                .and_then(|m| m.checked_add(1))
                .map(|m| store::price_key(m).to_vec()),
        )
    } else {
        (None, None)
    };
    let filters = Filters {
        vendor: q.vendor,
        brand: q.brand.clone(),
        price_min: q.price_min,
        price_max: q.price_max,
        attributes,
        in_stock: q.in_stock.unwrap_or(false),
    };
    let mut vendors = Vendors::new(&rtx);
    let budget = state.config.catalog.list_scan_budget;
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut last: Option<Vec<u8>> = None;
    let mut more = false;
    store::scan_listing(
        &rtx,
        &scope,
        sort,
        cursor.as_deref(),
        lo.clone(),
        hi.clone(),
        |id, suffix| {
            if items.len() == limit || scanned == budget {
                more = true;
                return Ok(false);
            }
            scanned += 1;
            last = Some(suffix.to_vec());
            if let Some(p) = store::listed_product(&rtx, id)?
                && filters.keep(&p, &rtx, &mut vendors)?
            {
                items.push(p);
            }
            Ok(true)
        },
    )?;
    let mut out = Vec::with_capacity(items.len());
    for p in items {
        let inv = inventory::inventory(&rtx, p.id)?;
        let cheapest = p.variants.iter().min_by_key(|v| v.price.amount);
        out.push(ProductSummary {
            id: p.id,
            price: p.from_price(),
            compare_at_price: cheapest.and_then(|v| v.compare_at_price),
            vendor: vendors.summary(p.vendor_id)?,
            image: p.images.first().map(image_view),
            slug: p.slug,
            title: p.title,
            brand: p.brand,
            category_id: p.category_id,
            in_stock: inv.total_available() > 0,
            status: p.status,
        });
    }
    let total = if q.include_total.unwrap_or(false) {
        let mut n = 0u64;
        store::scan_listing(&rtx, &scope, sort, None, lo, hi, |id, _| {
            if let Some(p) = store::listed_product(&rtx, id)?
                && filters.keep(&p, &rtx, &mut vendors)?
            {
                n += 1;
            }
            Ok(true)
        })?;
        Some(n)
    } else {
        None
    };
    Ok(ProductList {
        items: out,
        next_cursor: if more {
            last.map(|l| encode_cursor(sort, &l))
        } else {
            None
        },
        total,
    })
}

fn sort_tag(sort: Sort) -> u8 {
    match sort {
        Sort::Newest => b'n',
        Sort::PriceAsc => b'p',
        Sort::PriceDesc => b'q',
        Sort::Name => b'a',
    }
}

fn encode_cursor(sort: Sort, suffix: &[u8]) -> String {
    let mut b = vec![sort_tag(sort)];
    b.extend_from_slice(suffix);
    URL_SAFE_NO_PAD.encode(b)
}

fn decode_cursor(c: &str, sort: Sort) -> Result<Vec<u8>> {
    let bad = || {
        Error::invalid(
            "cursor",
            "invalid_cursor",
            "is not a cursor this list gave out (with this sort)",
        )
    };
    let b = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    match b.split_first() {
        Some((tag, rest)) if *tag == sort_tag(sort) && rest.len() == sort.suffix_len() => {
            Ok(rest.to_vec())
        }
        _ => Err(bad()),
    }
}

/// A vendor's own products in every status, oldest first (`GET /vendor/products`).
pub fn vendor_products(
    state: &AppState,
    p: &Principal,
    page: crate::services::PageQuery,
) -> Result<crate::services::Page<ProductSummary>> {
    let vendor = p.require_vendor()?;
    let limit = page.limit()?;
    let after = page.cursor_uuid()?.map(ProductId);
    let rtx = state.store.read()?;
    let (ids, more) = store::vendor_products(&rtx, vendor, after, limit)?;
    let mut vendors = Vendors::new(&rtx);
    let mut items = Vec::new();
    for id in &ids {
        if let Some(p) = store::product(&rtx, *id)? {
            let inv = inventory::inventory(&rtx, p.id)?;
            items.push(ProductSummary {
                id: p.id,
                slug: p.slug.clone(),
                title: p.title.clone(),
                brand: p.brand.clone(),
                price: p.from_price(),
                compare_at_price: None,
                category_id: p.category_id,
                vendor: vendors.summary(p.vendor_id)?,
                image: p.images.first().map(image_view),
                in_stock: inv.total_available() > 0,
                status: p.status,
            });
        }
    }
    Ok(crate::services::Page {
        next_cursor: if more {
            ids.last().map(|i| i.to_string())
        } else {
            None
        },
        items,
    })
}

#[derive(Debug, Serialize)]
pub struct LevelView {
    pub variant_id: VariantId,
    pub sku: String,
    pub warehouse_id: WarehouseId,
    pub warehouse_code: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

#[derive(Debug, Serialize)]
pub struct InventoryView {
    pub product_id: ProductId,
    pub version: u64,
    /// Every variant × every warehouse of the vendor, zeros included.
    pub levels: Vec<LevelView>,
}

/// Stock of a product for its vendor or an admin; 404 for anyone else.
pub fn inventory(state: &AppState, p: &Principal, id: ProductId) -> Result<InventoryView> {
    let rtx = state.store.read()?;
    let prod = store::product(&rtx, id)?.ok_or_else(|| Error::not_found("product"))?;
    p.require_vendor_of(prod.vendor_id)
        .map_err(|_| Error::not_found("product"))?;
    let inv = inventory::inventory(&rtx, id)?;
    let warehouses = inventory::vendor_warehouses(&rtx, prod.vendor_id)?;
    let mut levels = Vec::new();
    for v in &prod.variants {
        for w in &warehouses {
            let l = inv
                .levels
                .iter()
                .find(|l| l.variant_id == v.id && l.warehouse_id == w.id);
            let (on_hand, reserved) = l.map(|l| (l.on_hand, l.reserved)).unwrap_or((0, 0));
            levels.push(LevelView {
                variant_id: v.id,
                sku: v.sku.clone(),
                warehouse_id: w.id,
                warehouse_code: w.code.clone(),
                on_hand,
                reserved,
                available: on_hand - reserved,
            });
        }
    }
    Ok(InventoryView {
        product_id: id,
        version: inv.version,
        levels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_escaped_into_paragraphs() {
        assert_eq!(
            paragraphs_html("Hello <b>world</b> & \"you\"\nline two\n\n\nSecond 'para'"),
            "<p>Hello &lt;b&gt;world&lt;/b&gt; &amp; &quot;you&quot;<br>line two</p><p>Second &#39;para&#39;</p>"
        );
        assert_eq!(paragraphs_html(""), "");
    }

    #[test]
    fn cursors_are_bound_to_their_sort() {
        let s = vec![7u8; Sort::Newest.suffix_len()];
        let c = encode_cursor(Sort::Newest, &s);
        assert_eq!(decode_cursor(&c, Sort::Newest).unwrap(), s);
        assert!(decode_cursor(&c, Sort::Name).is_err());
        assert!(decode_cursor("not base64!", Sort::Newest).is_err());
        assert!(decode_cursor(&encode_cursor(Sort::Newest, &[1, 2]), Sort::Newest).is_err());
    }
}
