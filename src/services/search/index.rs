//! The tantivy index on disk: its schema, how a product becomes a document, where the live
//! index directory is (`search/CURRENT` names it) and the commit payload that records
//! which log offsets the index contains. It never reads redb and never serves HTTP.

use crate::error::{Error, Result};
use crate::money::Money;
use crate::services::catalog::model::{Category, CategoryId, Product};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

/// Name of the analyzer every searchable text field uses (and queries are parsed with).
pub const ANALYZER: &str = "souk";
/// Bumped when the schema changes: an index of another version is rebuilt at start.
pub const SCHEMA_VERSION: u32 = 1;
/// Uncompressed size of a doc store block (a new index's setting).
pub const DOCSTORE_BLOCK_BYTES: usize = 4096;
/// The log topics the index follows: the catalog's, then those feeding popularity
/// (orders sold, products viewed and search feedback in `telemetry`).
pub const TOPICS: [&str; 5] = ["products", "inventory", "vendors", "orders", "telemetry"];
/// The topics of [`TOPICS`] that only feed popularity counters.
pub const POPULARITY_TOPICS: [&str; 2] = ["orders", "telemetry"];

pub(crate) fn ts(e: tantivy::TantivyError) -> Error {
    Error::Storage(format!("search index: {e}"))
}

fn io(e: std::io::Error) -> Error {
    Error::Storage(format!("search index: {e}"))
}

/// Lower-cased, accent-folded words; over-long tokens (base64 blobs, serial numbers) are
/// dropped rather than bloating the vocabulary.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The schema's fields, looked up once.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub title: Field,
    pub brand_text: Field,
    pub category_text: Field,
    pub attrs_text: Field,
    pub description: Field,
    pub brand: Field,
    pub vendor: Field,
    pub cat_path: Field,
    pub attr: Field,
    pub price_min: Field,
    pub in_stock: Field,
    pub created: Field,
    pub popularity: Field,
    pub view: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        title: b.add_text_field("title", text.clone().set_stored()),
        brand_text: b.add_text_field("brand_text", text.clone()),
        category_text: b.add_text_field("category_text", text.clone()),
        attrs_text: b.add_text_field("attrs_text", text.clone()),
        description: b.add_text_field("description", text.set_stored()),
        brand: b.add_text_field("brand", STRING | FAST),
        vendor: b.add_text_field("vendor", STRING | FAST),
        // Every ancestor's id and the category's own: a filter on a parent matches its
        // descendants with one term, and facet counts per node come for free.
        cat_path: b.add_text_field("cat_path", STRING | FAST),
        // `key=value`, lower-cased key.
        attr: b.add_text_field("attr", STRING | FAST),
        price_min: b.add_i64_field("price_min", INDEXED | FAST),
        in_stock: b.add_u64_field("in_stock", INDEXED | FAST),
        created: b.add_i64_field("created", FAST),
        popularity: b.add_u64_field("popularity", FAST),
        view: b.add_text_field("view", STORED),
    };
    (b.build(), fields)
}

/// What a hit shows, stored with the document so that answering needs no redb read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HitView {
    pub id: String,
    pub title: String,
    pub slug: String,
    pub price_min: Money,
    pub price_max: Money,
    pub image: Option<String>,
    pub vendor_id: String,
    pub vendor_name: String,
    pub brand: Option<String>,
    pub category_id: String,
    pub in_stock: bool,
}

/// Everything beside the product that its document needs.
pub struct DocContext<'a> {
    pub categories: &'a HashMap<CategoryId, Category>,
    pub vendor_name: &'a str,
    pub available: i64,
    /// Search feedback, views and units sold, weighted (see `Worker::count`).
    pub popularity: u64,
}

/// The ids from the root down to `id` (cycles and dangling parents end the walk).
pub fn category_path(categories: &HashMap<CategoryId, Category>, id: CategoryId) -> Vec<Category> {
    let mut out = Vec::new();
    let mut cur = Some(id);
    while let Some(c) = cur.and_then(|i| categories.get(&i)) {
        if out.iter().any(|x: &Category| x.id == c.id) || out.len() > 32 {
            break;
        }
        out.push(c.clone());
        cur = c.parent;
    }
    out.reverse();
    out
}

/// The document of a sellable product (the caller has checked it is active and its vendor
/// is not suspended).
pub fn document(f: &Fields, p: &Product, cx: &DocContext<'_>) -> Result<TantivyDocument> {
    let mut d = TantivyDocument::default();
    let Some(min) = p.variants.iter().map(|v| v.price).min_by_key(|m| m.amount) else {
        return Err(Error::internal(
            "a product without variants cannot be indexed",
        ));
    };
    let max = p
        .variants
        .iter()
        .map(|v| v.price)
        .max_by_key(|m| m.amount)
        .unwrap_or(min);
    d.add_text(f.id, p.id.to_string());
    d.add_text(f.title, &p.title);
    d.add_text(f.vendor, p.vendor_id.to_string());
    if let Some(brand) = &p.brand {
        d.add_text(f.brand_text, brand);
        d.add_text(f.brand, brand);
    }
    for c in category_path(cx.categories, p.category_id) {
        d.add_text(f.category_text, &c.name);
        d.add_text(f.cat_path, c.id.to_string());
    }
    for (k, v) in &p.attributes {
        d.add_text(f.attrs_text, format!("{k} {v}"));
        d.add_text(f.attr, attr_value(k, v));
    }
    for v in &p.variants {
        for o in v.options.values() {
            d.add_text(f.attrs_text, o);
        }
    }
    d.add_text(f.description, &p.description);
    d.add_i64(f.price_min, min.amount);
    d.add_u64(f.in_stock, u64::from(cx.available > 0));
    d.add_i64(f.created, p.created_at.unix_timestamp());
    d.add_u64(f.popularity, cx.popularity);
    let view = HitView {
        id: p.id.to_string(),
        title: p.title.clone(),
        slug: p.slug.clone(),
        price_min: min,
        price_max: max,
        image: p
            .images
            .first()
            .map(|i| crate::services::catalog::queries::media_url(&i.card)),
        vendor_id: p.vendor_id.to_string(),
        vendor_name: cx.vendor_name.to_string(),
        brand: p.brand.clone(),
        category_id: p.category_id.to_string(),
        in_stock: cx.available > 0,
    };
    d.add_text(f.view, serde_json::to_string(&view)?);
    Ok(d)
}

/// An attribute as filtered and faceted: the key lower-cased, the value as given.
pub fn attr_value(key: &str, value: &str) -> String {
    format!("{}={value}", key.to_lowercase())
}

/// The log positions an index contains: next offset per partition of each topic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offsets {
    pub schema: u32,
    pub topics: BTreeMap<String, Vec<u64>>,
}

/// One opened index: what readers share.
pub struct Live {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub dir: PathBuf,
    /// What requests read: a searcher with its segments' words and suggestion entries,
    /// replaced whole after each reload (see `view`).
    views: super::view::Views,
    /// Recent answers of this index (see `cache`).
    pub answers: super::cache::AnswerCache,
}

impl Live {
    /// Opens an existing index; refuses one whose schema or payload is not ours, so the
    /// caller rebuilds it.
    pub fn open(dir: &Path) -> Result<(Live, Offsets)> {
        let index = Index::open_in_dir(dir).map_err(ts)?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(Error::Storage(format!(
                "search index at {} has another schema",
                dir.display()
            )));
        }
        let offsets: Offsets = match index.load_metas().map_err(ts)?.payload {
            Some(p) => serde_json::from_str(&p)?,
            None => return Err(Error::Storage("search index was never committed".into())),
        };
        if offsets.schema != SCHEMA_VERSION {
            return Err(Error::Storage("search index schema version differs".into()));
        }
        Ok((Self::wrap(index, fields, dir)?, offsets))
    }

    /// A new empty index in `dir` (which must not hold one).
    pub fn create(dir: &Path) -> Result<Live> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let (schema, fields) = schema();
        // Hits' documents are read one by one and scattered: 4 KiB blocks (not tantivy's
        // 16 KiB) mean a read decompresses a few documents rather than ~25.
        let settings = tantivy::IndexSettings {
            docstore_blocksize: DOCSTORE_BLOCK_BYTES,
            ..tantivy::IndexSettings::default()
        };
        let index = Index::builder()
            .schema(schema)
            .settings(settings)
            .create_in_dir(dir)
            .map_err(ts)?;
        Self::wrap(index, fields, dir)
    }

    fn wrap(index: Index, fields: Fields, dir: &Path) -> Result<Live> {
        index.tokenizers().register(ANALYZER, analyzer());
        // Reloaded by the indexer right after each commit: no polling thread, and a change
        // is visible as soon as it is committed.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(ts)?;
        let views = super::view::Views::open(&reader, &fields)?;
        Ok(Live {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            views,
            answers: super::cache::AnswerCache::default(),
        })
    }

    /// The searcher and segment data to answer a request from.
    pub fn view(&self) -> std::sync::Arc<super::view::View> {
        self.views.current()
    }

    pub fn writer(&self, memory_mib: usize) -> Result<IndexWriter> {
        self.index.writer(memory_mib * 1024 * 1024).map_err(ts)
    }

    /// Commits what `writer` holds together with `offsets`, then shows it to readers once
    /// the new segments' in-memory data is built (so no request waits for it).
    pub fn commit(&self, writer: &mut IndexWriter, offsets: &Offsets) -> Result<()> {
        let mut prepared = writer.prepare_commit().map_err(ts)?;
        prepared.set_payload(&serde_json::to_string(offsets)?);
        prepared.commit().map_err(ts)?;
        self.reader.reload().map_err(ts)?;
        self.views.refresh(&self.reader, &self.fields)
    }
}

/// `search/CURRENT` holds the name of the live index directory, switched atomically by a
/// rename so a crash mid-swap leaves either the old or the new one live.
pub fn current_dir(root: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(root.join("CURRENT")).ok()?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| root.join(name))
}

pub fn set_current(root: &Path, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::internal("index dir without a name"))?;
    let tmp = root.join("CURRENT.tmp");
    std::fs::write(&tmp, name).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, root.join("CURRENT")).map_err(io)?;
    if let Ok(d) = std::fs::File::open(root) {
        // Makes the rename itself durable; a failure only risks the previous index.
        let _ = d.sync_all();
    }
    Ok(())
}

/// A fresh directory name for a rebuild, unique even for two rebuilds in one millisecond.
pub fn new_dir(root: &Path) -> PathBuf {
    root.join(format!("index-{}", uuid::Uuid::now_v7().simple()))
}

/// Deletes index directories other than the live one (left by swaps or failed rebuilds).
pub fn remove_stale(root: &Path, live: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_index = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("index-"));
        if is_index && path != live {
            if let Err(err) = std::fs::remove_dir_all(&path) {
                tracing::warn!(error = %err, dir = %path.display(), "removing an old search index");
            }
        }
    }
}

/// Bytes the files under `dir` take.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// For tests of per-segment code: an index in memory with two segments of `per_segment`
/// documents each, ids `p{segment}-{i}` and the rest from `fill`, and the documents of
/// the first segment named in `deleted` deleted with the second commit.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn two_segments(
    per_segment: u64,
    fill: impl Fn(&Fields, &mut TantivyDocument, u64, u64),
    deleted: &[&str],
) -> (Index, Fields) {
    let (schema, f) = schema();
    let idx = Index::create_in_ram(schema);
    idx.tokenizers().register(ANALYZER, analyzer());
    let mut w: IndexWriter = idx.writer(15_000_000).unwrap();
    for segment in 0..2u64 {
        for i in 0..per_segment {
            let mut d = TantivyDocument::default();
            d.add_text(f.id, format!("p{segment}-{i}"));
            fill(&f, &mut d, segment, i);
            w.add_document(d).unwrap();
        }
        if segment == 1 {
            for id in deleted {
                w.delete_term(tantivy::Term::from_field_text(f.id, id));
            }
        }
        w.commit().unwrap();
    }
    (idx, f)
}
