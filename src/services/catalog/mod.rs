//! The catalog service: categories, products with variants, images, warehouses and stock.
//! Commands here check who may do what, validate, and run ONE `store.write` each; reads
//! live in `queries.rs`. No HTTP types here (see `api.rs`); the order service uses the
//! reservation functions in `inventory.rs` inside its own transaction.

pub mod api;
pub mod back_in_stock;
mod categories;
pub mod demo;
mod demo_art;
mod demo_words;
pub mod input;
pub mod inventory;
pub mod media;
pub mod model;
pub mod queries;
pub mod store;
pub mod storefront;

/// Answers asked for most recently, as the JSON sent, kept until the next committed write
/// (see `store::cache`): public product lists by their query, and products as an
/// anonymous caller sees them (with their ETag) by the id or slug asked for. Both show
/// only what every such caller may see, so one answer serves them all.
pub struct CatalogState {
    pub lists: crate::store::cache::GenCache<queries::ListQuery, axum::body::Bytes>,
    pub products: crate::store::cache::GenCache<String, (axum::body::Bytes, String)>,
}

/// How many answers of each kind are kept at once (a few MB at most).
const KEPT_ANSWERS: usize = 1024;

impl Default for CatalogState {
    fn default() -> CatalogState {
        CatalogState {
            lists: crate::store::cache::GenCache::new(KEPT_ANSWERS),
            products: crate::store::cache::GenCache::new(KEPT_ANSWERS),
        }
    }
}

use crate::app::AppState;
use crate::auth::{Principal, Role, VendorId};
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Currency;
use crate::services::vendors::model::VendorStatus;
use crate::store::Tx;
use input::{Checks, ProductInput, ProductUpdate, VariantInput, VariantRules};
use model::{Product, ProductId, ProductStatus, Variant, VariantId, Warehouse, WarehouseId};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use categories::{create_category, delete_category, unique_slug, update_category};
pub use queries::{CategoryView, ProductView};

/// The marketplace's currency (validated at start-up).
pub fn currency(state: &AppState) -> Currency {
    Currency::parse(&state.config.catalog.currency).unwrap_or(Currency::EUR)
}

fn rules(state: &AppState) -> VariantRules {
    VariantRules {
        currency: currency(state),
        max_variants: state.config.catalog.max_variants,
    }
}

/// Writes to the catalog need a vendor or an admin; customers are refused outright.
fn require_seller(p: &Principal) -> Result<()> {
    match p.role {
        Role::Admin | Role::Vendor => Ok(()),
        Role::Customer => Err(Error::Forbidden(
            "only vendors and admins change the catalog".into(),
        )),
    }
}

// ---------- products ----------

/// Builds variants from checked input, keeping the ids of existing variants.
fn build_variants(list: Vec<VariantInput>, existing: &[Variant], c: &mut Checks) -> Vec<Variant> {
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let id = match v.id {
                Some(id) if existing.iter().any(|e| e.id == id) => id,
                Some(_) => {
                    c.push(
                        format!("variants[{i}].id"),
                        "unknown_variant",
                        "not a variant of this product",
                    );
                    VariantId::new()
                }
                None => VariantId::new(),
            };
            Variant {
                id,
                sku: v.sku,
                options: v.options,
                price: v.price,
                compare_at_price: v.compare_at_price,
                weight_grams: v.weight_grams,
            }
        })
        .collect()
}

/// Checks what needs the database: the category exists, the slug and every SKU are free
/// (among the vendor's other products), the vendor is active.
fn check_in_store(tx: &Tx<'_>, p: &Product) -> Result<()> {
    let mut c = Checks::default();
    if store::category_in(tx, p.category_id)?.is_none() {
        c.push("category_id", "unknown_category", "no such category");
    }
    if let Some(owner) = store::product_slug_owner(tx, &p.slug)?
        && owner != p.id
    {
        c.push("slug", "taken", "another product has this slug");
    }
    for (i, v) in p.variants.iter().enumerate() {
        if let Some(owner) = store::sku_owner(tx, p.vendor_id, &v.sku)?
            && owner != p.id
        {
            c.push(
                format!("variants[{i}].sku"),
                "sku_taken",
                "another of your products uses this SKU",
            );
        }
    }
    c.finish()
}

fn require_active_vendor(tx: &Tx<'_>, vendor: VendorId) -> Result<()> {
    match crate::services::vendors::store::get_in(tx, vendor)? {
        None => Err(Error::invalid(
            "vendor_id",
            "unknown_vendor",
            "no such vendor",
        )),
        Some(v) if v.status == VendorStatus::Suspended => Err(Error::Forbidden(
            "the vendor is suspended and cannot change its catalog".into(),
        )),
        Some(_) => Ok(()),
    }
}

pub async fn create_product(
    state: &AppState,
    p: &Principal,
    input: ProductInput,
) -> Result<ProductView> {
    require_seller(p)?;
    let vendor_id = match (p.role, input.vendor_id) {
        (Role::Admin, Some(v)) => v,
        (Role::Admin, None) => {
            return Err(Error::invalid(
                "vendor_id",
                "required",
                "an admin must say which vendor sells it",
            ));
        }
        (_, Some(_)) => {
            return Err(Error::invalid(
                "vendor_id",
                "not_allowed",
                "a vendor's products are always its own",
            ));
        }
        (_, None) => p.require_vendor()?,
    };
    let mut c = Checks::default();
    let title = input::line(&mut c, "title", &input.title, 1, 200);
    let slug = input.slug.as_ref().map(|s| input::slug(&mut c, "slug", s));
    let description = input::text(&mut c, "description", &input.description, 20_000);
    let brand = input
        .brand
        .as_ref()
        .map(|b| input::line(&mut c, "brand", b, 1, 100));
    let attributes = input::pairs(&mut c, "attributes", &input.attributes, 50);
    let status = input.status.unwrap_or(ProductStatus::Draft);
    if status == ProductStatus::Archived {
        c.push("status", "not_allowed", "a new product is draft or active");
    }
    let vs = input::variants(&mut c, &input.variants, &rules(state));
    if vs.iter().any(|v| v.id.is_some()) {
        c.push(
            "variants",
            "not_allowed",
            "a new product's variants have no ids yet",
        );
    }
    let variants = build_variants(vs, &[], &mut c);
    c.finish()?;
    let now = state.clock.now();
    let actor = p.actor();
    let product = Product {
        id: ProductId::new(),
        vendor_id,
        slug: slug.clone().unwrap_or_default(),
        title,
        description,
        category_id: input.category_id,
        brand,
        attributes,
        status,
        variants,
        images: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let id = state
        .store
        .write(move |tx| {
            let mut product = product;
            require_active_vendor(tx, product.vendor_id)?;
            if slug.is_none() {
                product.slug = unique_slug(&model::slugify(&product.title), "product", |s| {
                    store::product_slug_owner(tx, s).map(|o| o.is_some())
                })?;
            }
            insert_product(tx, &product, &actor, now)?;
            Ok(product.id)
        })
        .await?;
    queries::product_for(state, Some(p), &id.to_string()).map(|(v, _)| v)
}

/// Stores a new, validated product and announces it. Used by `create_product` and demo data.
pub fn insert_product(
    tx: &mut Tx<'_>,
    product: &Product,
    actor: &str,
    now: OffsetDateTime,
) -> Result<()> {
    check_in_store(tx, product)?;
    store::put_product(tx, None, product)?;
    tx.emit(
        Envelope::new(
            Event::ProductCreated {
                product_id: product.id.to_string(),
                vendor_id: product.vendor_id.to_string(),
                category: product.category_id.to_string(),
                price: product.from_price().map(|m| m.amount).unwrap_or(0),
                timestamp: now,
            },
            now,
        )
        .with_actor(actor),
    );
    Ok(())
}

/// Loads a product the caller may change: 403 for customers, 404 when absent or another
/// vendor's (so ids reveal nothing).
fn owned_product(tx: &Tx<'_>, p: &Principal, id: ProductId) -> Result<Product> {
    require_seller(p)?;
    let prod = store::product_in(tx, id)?.ok_or_else(|| Error::not_found("product"))?;
    p.require_vendor_of(prod.vendor_id)
        .map_err(|_| Error::not_found("product"))?;
    Ok(prod)
}

/// Applies the fields present in `input`. With `expected_version` (from If-Match) a
/// concurrent change is refused with 412 instead of overwritten.
pub async fn update_product(
    state: &AppState,
    p: &Principal,
    id: ProductId,
    input: ProductUpdate,
    expected_version: Option<u64>,
) -> Result<ProductView> {
    require_seller(p)?;
    let mut c = Checks::default();
    let title = input
        .title
        .as_ref()
        .map(|t| input::line(&mut c, "title", t, 1, 200));
    let slug = input.slug.as_ref().map(|s| input::slug(&mut c, "slug", s));
    let description = input
        .description
        .as_ref()
        .map(|d| input::text(&mut c, "description", d, 20_000));
    let brand = input
        .brand
        .as_ref()
        .map(|b| b.as_ref().map(|b| input::line(&mut c, "brand", b, 1, 100)));
    let attributes = input
        .attributes
        .as_ref()
        .map(|a| input::pairs(&mut c, "attributes", a, 50));
    let variants = input
        .variants
        .as_ref()
        .map(|v| input::variants(&mut c, v, &rules(state)));
    c.finish()?;
    let now = state.clock.now();
    let actor = p.actor();
    let principal = p.clone();
    let max_images = state.config.catalog.max_images;
    state
        .store
        .write(move |tx| {
            let old = owned_product(tx, &principal, id)?;
            if let Some(v) = expected_version
                && v != old.version
            {
                return Err(Error::PreconditionFailed(format!(
                    "the product changed since version {v} (now {})",
                    old.version
                )));
            }
            require_active_vendor(tx, old.vendor_id)?;
            let mut new = old.clone();
            let mut c = Checks::default();
            if let Some(t) = title {
                new.title = t;
            }
            if let Some(s) = slug {
                new.slug = s;
            }
            if let Some(d) = description {
                new.description = d;
            }
            if let Some(b) = brand {
                new.brand = b;
            }
            if let Some(a) = attributes {
                new.attributes = a;
            }
            if let Some(cat) = input.category_id {
                new.category_id = cat;
            }
            if let Some(s) = input.status {
                new.status = s;
            }
            if let Some(v) = variants {
                new.variants = build_variants(v, &old.variants, &mut c);
            }
            if let Some(list) = &input.images {
                new.images = input::images(&mut c, list, &old.images);
                if new.images.len() > max_images {
                    c.push("images", "too_many", format!("at most {max_images} images"));
                }
            }
            c.finish()?;
            let changes = diff(&old, &new);
            if changes.is_empty() {
                return Ok(());
            }
            check_in_store(tx, &new)?;
            if input.variants.is_some() {
                inventory::drop_variants(tx, &new)?;
            }
            new.version += 1;
            new.updated_at = now;
            save_changed(tx, &old, &new, changes, &actor, now)
        })
        .await?;
    queries::product_for(state, Some(p), &id.to_string()).map(|(v, _)| v)
}

/// Writes an updated product and emits `Product.Updated` (plus `Product.Archived` when it
/// was just archived).
pub fn save_changed(
    tx: &mut Tx<'_>,
    old: &Product,
    new: &Product,
    changes: Map<String, Value>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<()> {
    store::put_product(tx, Some(old), new)?;
    tx.emit(
        Envelope::new(
            Event::ProductUpdated {
                product_id: new.id.to_string(),
                changes: Value::Object(changes),
                timestamp: now,
            },
            now,
        )
        .with_actor(actor),
    );
    if new.status == ProductStatus::Archived && old.status != ProductStatus::Archived {
        tx.emit(
            Envelope::new(
                Event::ProductArchived {
                    product_id: new.id.to_string(),
                    vendor_id: new.vendor_id.to_string(),
                    timestamp: now,
                },
                now,
            )
            .with_actor(actor),
        );
    }
    Ok(())
}

/// The fields that differ, with their new values: the `changes` of `Product.Updated`.
pub fn diff(old: &Product, new: &Product) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, changed: bool, v: Value| {
        if changed {
            m.insert(k.to_string(), v);
        }
    };
    put("title", old.title != new.title, json!(new.title));
    put("slug", old.slug != new.slug, json!(new.slug));
    put(
        "description",
        old.description != new.description,
        json!(new.description),
    );
    put(
        "categoryId",
        old.category_id != new.category_id,
        json!(new.category_id),
    );
    put("brand", old.brand != new.brand, json!(new.brand));
    put(
        "attributes",
        old.attributes != new.attributes,
        json!(new.attributes),
    );
    put("status", old.status != new.status, json!(new.status));
    put(
        "variants",
        old.variants != new.variants,
        json!(new.variants),
    );
    put(
        "images",
        old.images != new.images,
        json!(new.images.iter().map(|i| &i.id).collect::<Vec<_>>()),
    );
    let (a, b) = (old.from_price(), new.from_price());
    put("price", a != b, json!(b.map(|m| m.amount)));
    m
}

/// DELETE archives: the product leaves lists and can no longer be bought, but stays
/// readable by id for the orders that point at it. Archiving twice changes nothing.
pub async fn archive_product(state: &AppState, p: &Principal, id: ProductId) -> Result<()> {
    let now = state.clock.now();
    let actor = p.actor();
    let principal = p.clone();
    state
        .store
        .write(move |tx| {
            let old = owned_product(tx, &principal, id)?;
            if old.status == ProductStatus::Archived {
                return Ok(());
            }
            let mut new = old.clone();
            new.status = ProductStatus::Archived;
            new.version += 1;
            new.updated_at = now;
            let changes = diff(&old, &new);
            save_changed(tx, &old, &new, changes, &actor, now)
        })
        .await
}

// ---------- warehouses and stock ----------

pub async fn create_warehouse(
    state: &AppState,
    p: &Principal,
    input: input::WarehouseInput,
) -> Result<Warehouse> {
    let vendor = p.require_vendor()?;
    let mut c = Checks::default();
    let name = input::line(&mut c, "name", &input.name, 1, 100);
    let code = input::line(&mut c, "code", &input.code, 1, 20).to_ascii_uppercase();
    if !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        c.push("code", "invalid_code", "letters, digits and '-' only");
    }
    c.finish()?;
    let now = state.clock.now();
    state
        .store
        .write(move |tx| {
            require_active_vendor(tx, vendor)?;
            if inventory::vendor_warehouses_in(tx, vendor)?
                .iter()
                .any(|w| w.code == code)
            {
                return Err(Error::invalid(
                    "code",
                    "taken",
                    "you already have a warehouse with this code",
                ));
            }
            let w = Warehouse {
                id: WarehouseId::new(),
                vendor_id: vendor,
                name,
                code,
                created_at: now,
            };
            inventory::put_warehouse(tx, &w)?;
            Ok(w)
        })
        .await
}

pub fn warehouses(state: &AppState, p: &Principal) -> Result<Vec<Warehouse>> {
    let vendor = p.require_vendor()?;
    inventory::vendor_warehouses(&state.store.read()?, vendor)
}

/// Sets on-hand quantities with optimistic concurrency: `version` (from the body or
/// If-Match) must match, else 409 `stale_version`.
pub async fn set_inventory(
    state: &AppState,
    p: &Principal,
    id: ProductId,
    input: input::InventoryInput,
    if_match: Option<u64>,
) -> Result<queries::InventoryView> {
    require_seller(p)?;
    let version = match (input.version, if_match) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid(
                "version",
                "mismatch",
                "the body and If-Match disagree",
            ));
        }
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(Error::invalid(
                "version",
                "required",
                "send the version you read, in the body or If-Match",
            ));
        }
    };
    let updates: Vec<inventory::LevelUpdate> = input
        .levels
        .iter()
        .map(|l| inventory::LevelUpdate {
            variant_id: l.variant_id,
            warehouse_id: l.warehouse_id,
            on_hand: l.on_hand,
        })
        .collect();
    let now = state.clock.now();
    let actor = p.actor();
    let principal = p.clone();
    state
        .store
        .write(move |tx| {
            let prod = owned_product(tx, &principal, id)?;
            inventory::set_levels(tx, &prod, version, &updates, &actor, now).map(|_| ())
        })
        .await?;
    queries::inventory(state, p, id)
}
