//! What a hit shows (its stored view and the description its snippet is cut from), read
//! from the index's document store the first time the document is a hit, then kept. A
//! document never changes once written (an update is a new document in a newer segment),
//! so what was read stays right for as long as its segment lives; it is shared by every
//! view of the index. Without it every hit of every answer decompressed a block of the
//! store and parsed the document and its view. It never decides what matches.
//!
//! Kept up to [`BUDGET_BYTES`]; past it the memo starts over.

use super::index::{self, Fields, HitView};
use super::view::{Budgeted, Weighed};
use crate::error::{Error, Result};
use std::sync::Arc;
use tantivy::index::SegmentId;
use tantivy::schema::Value;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

/// Bytes of shown documents kept at most (a product's view and description take about
/// half a kilobyte).
pub const BUDGET_BYTES: usize = 12 << 20;

/// One document as a hit shows it.
#[derive(Debug)]
pub struct Shown {
    pub view: Arc<HitView>,
    /// `view` as JSON, rendered once (see `answer`).
    pub view_json: Arc<str>,
    /// The description's values joined by spaces, as tantivy's snippets read a document.
    pub description: String,
}

impl Shown {
    /// Reads document `addr` of `searcher` from the store.
    pub fn read(searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<Shown> {
        let doc: TantivyDocument = searcher.doc(addr).map_err(index::ts)?;
        let view = doc
            .get_first(f.view)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::internal("search document without its view"))?;
        let mut description = String::new();
        for text in doc.get_all(f.description).filter_map(|v| v.as_str()) {
            description.push(' ');
            description.push_str(text);
        }
        let view: Arc<HitView> = Arc::new(serde_json::from_str(view)?);
        Ok(Shown {
            view_json: serde_json::to_string(&view)?.into(),
            view,
            description: description.trim().to_string(),
        })
    }
}

impl Weighed for Shown {
    fn bytes(&self) -> usize {
        // The parsed view takes about what its JSON does.
        2 * self.view_json.len() + self.description.len() + 256
    }
}

/// (segment, document) → what it shows.
pub struct ShownMemo(Budgeted<(SegmentId, DocId), Shown>);

impl Default for ShownMemo {
    fn default() -> Self {
        ShownMemo(Budgeted::new(BUDGET_BYTES))
    }
}

impl ShownMemo {
    /// Document `addr` of `searcher` as a hit shows it, read once.
    pub fn get(&self, searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<Arc<Shown>> {
        let segment = searcher.segment_reader(addr.segment_ord).segment_id();
        self.0
            .get_or((segment, addr.doc_id), || Shown::read(searcher, f, addr))
    }
}
