//! `souk demo`: fills a data dir with a living marketplace (an admin, vendors with
//! warehouses, a three-level category tree, products with variants, stock and images),
//! deterministic for a seed, in large transactions so 100,000 products take seconds.
//! An existing demo dir (with its `demo.json`) is reused, never regenerated or mixed.

use super::demo_art;
use super::demo_words::*;
use super::inventory;
use super::model::{
    Category, CategoryId, Inventory, Product, ProductId, ProductImage, ProductStatus, Variant,
    VariantId, Warehouse, WarehouseId, slugify,
};
use crate::App;
use crate::auth::{ClientInfo, Principal, Role, UserId, VendorId};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Instant;

/// The password of every demo account. A demo is for looking around, never production.
pub const DEMO_PASSWORD: &str = "souk-demo-2026";

/// Products written per transaction: big enough to amortise commits, small enough to
/// keep the writer's memory flat.
const BATCH: usize = 2000;

/// What `generate` made (or found), and how to log in. Also stored as `demo.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoReport {
    pub url: String,
    pub products: usize,
    pub vendors: usize,
    pub categories: usize,
    pub images: usize,
    pub seed: u64,
    pub admin_email: String,
    pub vendor_emails: Vec<String>,
    pub customer_email: String,
    pub password: String,
    /// Seconds generation took; 0 when reused.
    pub seconds: f64,
    #[serde(skip)]
    pub reused: bool,
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reused {
            writeln!(
                f,
                "Reusing the demo marketplace in this data dir (seed {}).",
                self.seed
            )?;
        } else {
            writeln!(
                f,
                "Demo marketplace generated in {:.1} s (seed {}).",
                self.seconds, self.seed
            )?;
        }
        writeln!(
            f,
            "  {} products, {} vendors, {} categories, {} distinct images",
            self.products, self.vendors, self.categories, self.images
        )?;
        writeln!(f, "  Open {}", self.url)?;
        writeln!(f, "  Admin:    {} / {}", self.admin_email, self.password)?;
        for v in self.vendor_emails.iter().take(2) {
            writeln!(f, "  Vendor:   {v} / {}", self.password)?;
        }
        write!(f, "  Customer: {} / {}", self.customer_email, self.password)
    }
}

/// Creates the demo in `config.data_dir` (or reuses the one already there). Blocking: it
/// runs on its own thread with its own runtime, so it may be called from anywhere.
pub fn generate(config: &Config, products: usize, seed: u64) -> Result<DemoReport> {
    let config = config.clone();
    std::thread::Builder::new()
        .name("souk-demo".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::internal)?;
            rt.block_on(run(config, products, seed))
        })
        .map_err(Error::internal)?
        .join()
        .map_err(|_| Error::internal("the demo generator panicked"))?
}

fn report_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("demo.json")
}

async fn run(config: Config, products: usize, seed: u64) -> Result<DemoReport> {
    if let Ok(text) = std::fs::read_to_string(report_path(&config)) {
        let mut r: DemoReport = serde_json::from_str(&text)
            .map_err(|e| Error::Storage(format!("demo.json is unreadable: {e}")))?;
        r.reused = true;
        r.url = config.public_url();
        return Ok(r);
    }
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Storage(format!("{}: {e}", config.data_dir.display())))?;
    let app = App::open(config.clone())?;
    let state = app.state.clone();
    if crate::services::users::store::any_admin(&state.store.read()?)? {
        return Err(Error::conflict(
            "not_a_demo_dir",
            "this data dir already holds a marketplace that is not a demo; pick an empty --data dir",
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let admin_email = "admin@souk.example".to_string();
    let admin_id = crate::services::users::admin::create_admin(
        &state,
        &admin_email,
        DEMO_PASSWORD,
        Some("Demo Admin"),
    )
    .await?;
    let admin = Principal {
        user_id: admin_id,
        role: Role::Admin,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    };
    let vendor_count = (products / 2000).clamp(4, 12);
    let mut vendors = Vec::new();
    let mut vendor_emails = Vec::new();
    for i in 0..vendor_count {
        let email = format!("vendor{}@souk.example", i + 1);
        let owner = register(
            &state,
            &email,
            &format!("{} Owner", VENDOR_NAMES[i % VENDOR_NAMES.len()]),
        )
        .await?;
        let v = crate::services::vendors::create(
            &state,
            &admin,
            crate::services::vendors::CreateInput {
                name: VENDOR_NAMES[i % VENDOR_NAMES.len()].to_string(),
                owner_user_id: owner,
            },
        )
        .await?;
        vendors.push(v.id);
        vendor_emails.push(email);
    }
    let customer_email = "customer@souk.example".to_string();
    register(&state, &customer_email, "Demo Customer").await?;

    let now = state.clock.now();
    // A fixed start (2026-01-01) keeps ids identical for a seed; anything created later
    // through the API has newer ids and lists first.
    let base_ms: u64 = 1_767_225_600_000;
    let mut ids = IdGen {
        rng: StdRng::seed_from_u64(seed ^ 0x5eed),
        ms: base_ms,
    };

    // Warehouses: two per vendor.
    let mut warehouses: Vec<(VendorId, Vec<WarehouseId>)> = Vec::new();
    let mut to_write = Vec::new();
    for (i, v) in vendors.iter().enumerate() {
        let mut mine = Vec::new();
        for (k, city) in ["BER", "LIS"].iter().enumerate() {
            let w = Warehouse {
                id: WarehouseId(ids.next()),
                vendor_id: *v,
                name: format!("{} depot {}", city, i + 1),
                code: format!("{city}-{}", k + 1),
                created_at: now,
            };
            mine.push(w.id);
            to_write.push(w);
        }
        warehouses.push((*v, mine));
    }

    // The category tree: roots, each with children, each with grandchildren (the leaves).
    let mut categories = Vec::new();
    let mut leaves: Vec<(CategoryId, usize)> = Vec::new();
    for (r, root) in TREE.iter().enumerate() {
        let root_cat = category(&mut ids, root.name, None, now);
        for child in root.children {
            let child_cat = category(&mut ids, child, Some(root_cat.id), now);
            for leaf in LEAF_KINDS {
                let name = format!("{leaf} {}", child.to_lowercase());
                let mut leaf_cat = category(&mut ids, &name, Some(child_cat.id), now);
                leaf_cat.slug = format!("{}-{}", slugify(&name), slugify(root.name));
                leaves.push((leaf_cat.id, r));
                categories.push(leaf_cat);
            }
            categories.push(child_cat);
        }
        categories.push(root_cat);
    }
    let category_count = categories.len();
    state
        .store
        .write(move |tx| {
            for w in &to_write {
                inventory::put_warehouse(tx, w)?;
            }
            for c in &categories {
                super::store::put_category(tx, None, c)?;
            }
            Ok(())
        })
        .await?;

    // A palette of generated images, shared by many products (drawing 100,000 distinct
    // images would take minutes and gigabytes for no insight).
    let palette_size = config.catalog.demo_images.min(products.max(1));
    let prepared = tokio::task::spawn_blocking(move || {
        (0..palette_size)
            .map(|i| {
                super::media::prepare(demo_art::draw(i, 600), usize::MAX, 10_000).map_err(|e| {
                    match e {
                        super::media::MediaError::Other(e) => e,
                        _ => Error::internal("a generated image was refused"),
                    }
                })
            })
            .collect::<Result<Vec<_>>>()
    })
    .await
    .map_err(Error::internal)??;
    let palette: Vec<ProductImage> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.image(format!(
                "Picture {}{}",
                demo_art::letter(i) as char,
                i / 26 + 1
            ))
        })
        .collect();
    let dd = config.data_dir.clone();
    state
        .store
        .write(move |tx| {
            for p in &prepared {
                super::media::store_files(&dd, tx, p)?;
            }
            Ok(())
        })
        .await?;

    let currency = Currency::parse(&config.catalog.currency).unwrap_or(Currency::EUR);
    let mut slugs = HashSet::new();
    let mut made = 0;
    while made < products {
        let n = BATCH.min(products - made);
        let mut batch = Vec::with_capacity(n);
        for i in made..made + n {
            let (vendor, whs) = &warehouses[weighted_vendor(&mut rng, warehouses.len())];
            let (cat, root) = leaves[rng.random_range(0..leaves.len())];
            let p = product(
                &mut rng, &mut ids, i, *vendor, cat, root, currency, &palette, &mut slugs, now,
            );
            let mut inv = Inventory::default();
            for v in &p.variants {
                for w in whs {
                    let on_hand = if rng.random_ratio(1, 8) {
                        0
                    } else {
                        rng.random_range(1..60)
                    };
                    inv.level_mut(v.id, *w).on_hand = on_hand;
                }
            }
            inv.version = 1;
            batch.push((p, inv));
        }
        made += n;
        state
            .store
            .write(move |tx| {
                for (p, inv) in &batch {
                    super::insert_product(tx, p, "demo", now)?;
                    inventory::put_inventory(tx, p.id, inv)?;
                }
                Ok(())
            })
            .await?;
    }
    let report = DemoReport {
        url: config.public_url(),
        products,
        vendors: vendor_count,
        categories: category_count,
        images: palette.len(),
        seed,
        admin_email,
        vendor_emails,
        customer_email,
        password: DEMO_PASSWORD.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        reused: false,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(report_path(&config), text).map_err(|e| Error::Storage(e.to_string()))?;
    state.store.close();
    Ok(report)
}

async fn register(state: &crate::app::AppState, email: &str, name: &str) -> Result<UserId> {
    let u = crate::services::users::register(
        state,
        crate::services::users::RegisterInput {
            email: email.to_string(),
            password: DEMO_PASSWORD.to_string(),
            name: name.to_string(),
        },
        &ClientInfo::default(),
    )
    .await?;
    Ok(u.id)
}

/// UUIDv7s from a seeded generator and a moving clock: the same seed gives the same ids,
/// still in creation order.
struct IdGen {
    rng: StdRng,
    ms: u64,
}

impl IdGen {
    fn next(&mut self) -> uuid::Uuid {
        self.ms += 1;
        let bytes: [u8; 10] = self.rng.random();
        uuid::Builder::from_unix_timestamp_millis(self.ms, &bytes).into_uuid()
    }
}

fn category(
    ids: &mut IdGen,
    name: &str,
    parent: Option<CategoryId>,
    now: time::OffsetDateTime,
) -> Category {
    Category {
        id: CategoryId(ids.next()),
        name: name.to_string(),
        slug: slugify(name),
        parent,
        created_at: now,
    }
}

/// A few big vendors and a long tail, as marketplaces look.
fn weighted_vendor(rng: &mut StdRng, n: usize) -> usize {
    let x: f64 = rng.random();
    ((x * x) * n as f64) as usize % n
}

#[allow(clippy::too_many_arguments)]
fn product(
    rng: &mut StdRng,
    ids: &mut IdGen,
    i: usize,
    vendor: VendorId,
    category: CategoryId,
    root: usize,
    currency: Currency,
    palette: &[ProductImage],
    slugs: &mut HashSet<String>,
    now: time::OffsetDateTime,
) -> Product {
    let theme = &TREE[root];
    let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
    let adjective = pick(rng, ADJECTIVES);
    let material = pick(rng, theme.materials);
    let noun = pick(rng, theme.nouns);
    let brand = pick(rng, BRANDS);
    let title = format!("{adjective} {material} {noun}");
    let base = slugify(&format!("{brand} {title}"));
    let mut slug = base.clone();
    let mut k = 2;
    while !slugs.insert(slug.clone()) {
        slug = format!("{base}-{k}");
        k += 1;
    }
    let colour = pick(rng, COLOURS);
    let description = format!(
        "The {title} by {brand} is {} and {}.\n\nMade of {} in {}, finished in {colour}. {}",
        pick(rng, QUALITIES),
        pick(rng, QUALITIES),
        material.to_lowercase(),
        pick(rng, ORIGINS),
        pick(rng, CLOSERS)
    );
    let mut attributes = BTreeMap::new();
    attributes.insert("material".to_string(), material.to_lowercase());
    attributes.insert("colour".to_string(), colour.to_string());
    attributes.insert("origin".to_string(), pick(rng, ORIGINS).to_string());
    let base_price: i64 = rng.random_range(3..500) * 100 - if rng.random_bool(0.6) { 1 } else { 0 };
    let variant_count = rng.random_range(1..=4usize);
    let sizes = ["S", "M", "L", "XL"];
    let variants: Vec<Variant> = (0..variant_count)
        .map(|k| {
            let mut options = BTreeMap::new();
            if variant_count > 1 {
                options.insert("size".to_string(), sizes[k].to_string());
            }
            let price = base_price + (k as i64) * 200;
            Variant {
                id: VariantId(ids.next()),
                sku: format!("D{i:06}-{}", k + 1),
                options,
                price: Money::new(price, currency),
                compare_at_price: rng
                    .random_ratio(1, 5)
                    .then(|| Money::new(price + price / 4, currency)),
                weight_grams: Some(rng.random_range(50..5000)),
            }
        })
        .collect();
    let status = match rng.random_range(0..100) {
        0..=1 => ProductStatus::Draft,
        2 => ProductStatus::Archived,
        _ => ProductStatus::Active,
    };
    let images = if palette.is_empty() {
        Vec::new()
    } else {
        let first = picture_for(noun, i * 7 + root * 5, palette.len());
        let mut v = vec![ProductImage {
            alt: title.clone(),
            ..palette[first].clone()
        }];
        // A second view of the same initial, when the palette has one.
        let second = first + 26 * (1 + (i % 2));
        if second < palette.len() && rng.random_bool(0.3) {
            v.push(ProductImage {
                alt: title.clone(),
                ..palette[second].clone()
            });
        }
        v
    };
    Product {
        id: ProductId(ids.next()),
        vendor_id: vendor,
        title,
        slug,
        description,
        category_id: category,
        brand: Some(brand.to_string()),
        attributes,
        status,
        variants,
        images,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Which of `n` palette pictures a product named after `word` shows: one carrying the
/// word's initial (picture k carries letter k mod 26), `spread` choosing among several.
fn picture_for(word: &str, spread: usize, n: usize) -> usize {
    let letter = word.bytes().next().map(|b| b.to_ascii_uppercase());
    match letter {
        Some(l @ b'A'..=b'Z') if usize::from(l - b'A') < n => {
            let first = usize::from(l - b'A');
            let count = (n - first).div_ceil(26);
            first + 26 * (spread % count)
        }
        _ => spread % n,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        let mut c = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
        c.catalog.demo_images = 4;
        c
    }

    fn catalog_of(config: &Config) -> Vec<(String, String, i64)> {
        let app = App::open(config.clone()).unwrap();
        let rtx = app.state.store.read().unwrap();
        let t = rtx
            .open_table(crate::store::tables::PRODUCT_ID_TO_PRODUCT)
            .unwrap();
        use redb::ReadableTable;
        let out = t
            .iter()
            .unwrap()
            .map(|r| {
                let p: Product = crate::store::codec::decode(r.unwrap().1.value()).unwrap();
                (
                    p.id.to_string(),
                    p.title.clone(),
                    p.from_price().unwrap().amount,
                )
            })
            .collect();
        drop(t);
        drop(rtx);
        app.state.store.close();
        out
    }

    #[test]
    fn a_product_shows_a_picture_with_its_initial() {
        // 52 pictures: two per letter.
        for spread in 0..4 {
            let k = picture_for("Backpack", spread, 52);
            assert_eq!(demo_art::letter(k), b'B');
        }
        assert_ne!(
            picture_for("Backpack", 0, 52),
            picture_for("Backpack", 1, 52)
        );
        // Too small a palette for the letter, or no letter: any picture, still in range.
        assert!(picture_for("Zip", 3, 4) < 4);
        assert!(picture_for("", 9, 4) < 4);
    }

    #[test]
    fn same_seed_same_catalog_and_a_second_run_reuses() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let r = generate(&config(a.path()), 300, 7).unwrap();
        assert!(!r.reused);
        assert_eq!(r.products, 300);
        assert!(r.to_string().contains("admin@souk.example"));
        generate(&config(b.path()), 300, 7).unwrap();
        let (ca, cb) = (catalog_of(&config(a.path())), catalog_of(&config(b.path())));
        assert_eq!(ca.len(), 300);
        assert_eq!(ca, cb);
        let again = generate(&config(a.path()), 999, 1).unwrap();
        assert!(again.reused);
        assert_eq!(again.products, 300);
        assert_eq!(catalog_of(&config(a.path())).len(), 300);
    }
}
