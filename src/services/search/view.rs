//! What a request reads from the live index: one searcher and, for each of its segments,
//! the in-memory data requests need (the searchable words, see `vocab`; the suggestion
//! entries, see `suggest_index`). A view is built whole when the index reloads (by the
//! indexer, after its commit, or when the index is opened) and only then shown to
//! requests, so no request ever reads a segment or waits for one to be read. Segments
//! never change once written: a segment's data is read once and shared by every view
//! that holds the segment.

use super::index::Fields;
use super::query::Expansion;
use super::segment_docs::{self, SegmentDocs};
use super::shown::ShownMemo;
use super::suggest_index::{self, SegmentEntries};
use super::vocab::{self, SegmentWords};
use super::word_hits::HitsMemo;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tantivy::index::SegmentId;
use tantivy::{IndexReader, Searcher};

/// A searcher and its segments' data, in the searcher's segment order.
pub struct View {
    pub searcher: Searcher,
    pub fields: Fields,
    pub words: Vec<Arc<SegmentWords>>,
    pub suggest: Vec<Arc<SegmentEntries>>,
    /// Per segment, what ranking and facets read per hit (see `segment_docs`).
    pub docs: Vec<Arc<SegmentDocs>>,
    /// Query words worked out against `words` (search) and against `suggest`'s words
    /// (suggestions): they depend on nothing else, so a word typed again costs a lookup.
    pub expansions: Memo<Vec<(Expansion, u8)>>,
    pub suggest_expansions: Memo<Vec<Expansion>>,
    /// Each query word's matches and scores (see `word_hits`).
    pub word_hits: HitsMemo,
    /// What hits show, shared by every view (see `shown`).
    pub shown: Arc<ShownMemo>,
}

/// Words distinct views kept expanded at most; past it the memo starts over.
pub const MEMO_WORDS: usize = 4096;

/// Typed word (finished, or a prefix) → what was worked out from it.
pub struct Memo<V> {
    words: Mutex<[HashMap<Box<str>, Arc<V>>; 2]>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            words: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }
}

impl<V> Memo<V> {
    /// Whether `word` was worked out.
    pub fn contains(&self, word: &str, prefix: bool) -> bool {
        let words = self.words.lock().unwrap_or_else(|p| p.into_inner());
        words[usize::from(prefix)].contains_key(word)
    }

    /// What `work` gives for `word`, worked out once.
    pub fn get_or(&self, word: &str, prefix: bool, work: impl FnOnce() -> V) -> Arc<V> {
        let i = usize::from(prefix);
        let lock = || self.words.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = lock()[i].get(word) {
            return v.clone();
        }
        // Worked out outside the lock: two requests may both do it, to the same result.
        let v = Arc::new(work());
        let mut words = lock();
        if words[i].len() >= MEMO_WORDS {
            words[i].clear();
        }
        words[i].insert(Box::from(word), v.clone());
        v
    }
}

/// What a memo keeps, by the bytes it takes.
pub trait Weighed {
    fn bytes(&self) -> usize;
}

/// Key → what was worked out from it, kept up to a byte budget; past it the memo starts
/// over.
pub struct Budgeted<K, V> {
    budget: usize,
    kept: Mutex<(HashMap<K, Arc<V>>, usize)>,
}

impl<K: std::hash::Hash + Eq, V: Weighed> Budgeted<K, V> {
    pub fn new(budget: usize) -> Self {
        Budgeted {
            budget,
            kept: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<K, Arc<V>>, usize)> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is kept for `key`, if it was worked out.
    pub fn peek(&self, key: &K) -> Option<Arc<V>> {
        self.lock().0.get(key).cloned()
    }

    /// What `work` gives for `key`, worked out once.
    pub fn get_or(&self, key: K, work: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        if let Some(v) = self.peek(&key) {
            return Ok(v);
        }
        // Worked out outside the lock: two requests may both do it, to the same result.
        let v = Arc::new(work()?);
        let size = v.bytes();
        let mut kept = self.lock();
        if kept.1 + size > self.budget {
            kept.0.clear();
            kept.1 = 0;
        }
        if kept.0.insert(key, v.clone()).is_none() {
            kept.1 += size;
        }
        Ok(v)
    }
}

impl View {
    /// The searcher's generation: answers computed on this view are stamped with it.
    pub fn generation(&self) -> u64 {
        self.searcher.generation().generation_id()
    }
}

type SegmentData = (Arc<SegmentWords>, Arc<SegmentEntries>, Arc<SegmentDocs>);

/// The view requests read, and the segment data of the last one built.
pub struct Views {
    current: RwLock<Arc<View>>,
    segments: Mutex<HashMap<SegmentId, SegmentData>>,
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

impl Views {
    /// The first view, of what `reader` shows now.
    pub fn open(reader: &IndexReader, f: &Fields) -> Result<Views> {
        let mut segments = HashMap::new();
        let view = build(reader.searcher(), f, &mut segments, Arc::default())?;
        Ok(Views {
            current: RwLock::new(Arc::new(view)),
            segments: Mutex::new(segments),
        })
    }

    /// The view to answer a request from.
    pub fn current(&self) -> Arc<View> {
        read_lock(&self.current).clone()
    }

    /// Builds the view of what `reader` shows now (reading only segments new since the
    /// last one), then makes it the one requests read.
    pub fn refresh(&self, reader: &IndexReader, f: &Fields) -> Result<()> {
        let searcher = reader.searcher();
        if searcher.generation().generation_id() == self.current().generation() {
            return Ok(());
        }
        let view = {
            let mut segments = self.segments.lock().unwrap_or_else(|p| p.into_inner());
            build(searcher, f, &mut segments, self.current().shown.clone())?
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
        Ok(())
    }
}

/// The view of `searcher`, taking segment data from `known` where it is there already;
/// `known` is left holding exactly the searcher's segments.
fn build(
    searcher: Searcher,
    f: &Fields,
    known: &mut HashMap<SegmentId, SegmentData>,
    shown: Arc<ShownMemo>,
) -> Result<View> {
    let started = std::time::Instant::now();
    let readers = searcher.segment_readers();
    let mut read = 0u32;
    let mut now = HashMap::with_capacity(readers.len());
    let mut words = Vec::with_capacity(readers.len());
    let mut suggest = Vec::with_capacity(readers.len());
    let mut docs = Vec::with_capacity(readers.len());
    for r in readers {
        let id = r.segment_id();
        let data = match known.remove(&id) {
            Some(d) => d,
            None => {
                read += r.max_doc();
                (
                    Arc::new(vocab::read_segment(r, f)?),
                    Arc::new(suggest_index::read_segment(r, f)?),
                    Arc::new(segment_docs::read_segment(r, f)?),
                )
            }
        };
        words.push(data.0.clone());
        suggest.push(data.1.clone());
        docs.push(data.2.clone());
        now.insert(id, data);
    }
    *known = now;
    tracing::debug!(
        segments = readers.len(),
        documents_read = read,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "search view built"
    );
    Ok(View {
        searcher,
        fields: *f,
        words,
        suggest,
        docs,
        expansions: Memo::default(),
        suggest_expansions: Memo::default(),
        word_hits: HitsMemo::default(),
        shown,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::search::index;

    fn segment_count(view: &View) -> usize {
        assert_eq!(view.words.len(), view.searcher.segment_readers().len());
        assert_eq!(view.suggest.len(), view.words.len());
        view.words.len()
    }

    #[test]
    fn a_word_is_worked_out_once_per_kind() {
        let memo: Memo<String> = Memo::default();
        let calls = std::cell::Cell::new(0);
        let work = |w: &str, p: bool| {
            calls.set(calls.get() + 1);
            format!("{w}{p}")
        };
        assert_eq!(
            *memo.get_or("mug", false, || work("mug", false)),
            "mugfalse"
        );
        assert_eq!(
            *memo.get_or("mug", false, || work("mug", false)),
            "mugfalse"
        );
        assert_eq!(calls.get(), 1);
        // A prefix is another question than the finished word.
        assert_eq!(*memo.get_or("mug", true, || work("mug", true)), "mugtrue");
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn a_view_is_built_at_reload_and_reuses_unchanged_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, f) = index::schema();
        let idx = tantivy::Index::create_in_dir(dir.path(), schema).unwrap();
        idx.tokenizers()
            .register(index::ANALYZER, index::analyzer());
        let reader = idx
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()
            .unwrap();
        let views = Views::open(&reader, &f).unwrap();
        assert_eq!(segment_count(&views.current()), 0);
        let mut w: tantivy::IndexWriter = idx.writer(15_000_000).unwrap();
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_text(f.title, "Ceramic teapot");
        w.add_document(doc).unwrap();
        w.commit().unwrap();
        reader.reload().unwrap();
        // Not shown to requests until refreshed.
        assert_eq!(segment_count(&views.current()), 0);
        views.refresh(&reader, &f).unwrap();
        let first = views.current();
        assert_eq!(segment_count(&first), 1);
        assert!(first.words[0].position("teapot").is_some());
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_text(f.title, "Oak board");
        w.add_document(doc).unwrap();
        w.commit().unwrap();
        reader.reload().unwrap();
        views.refresh(&reader, &f).unwrap();
        let second = views.current();
        assert_eq!(segment_count(&second), 2);
        let old = second
            .searcher
            .segment_readers()
            .iter()
            .position(|r| r.segment_id() == first.searcher.segment_reader(0).segment_id())
            .unwrap();
        assert!(
            Arc::ptr_eq(&second.words[old], &first.words[0]),
            "an unchanged segment is not read again"
        );
    }
}
