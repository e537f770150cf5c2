//! The suggestion index: per segment of the live index (a segment never changes once
//! written), the words of titles, brand names and category names with the documents
//! holding each (in the title, or only elsewhere), and per document what ranks and groups
//! it (in-stock and popularity boost, brand, category path). An as-you-type request is
//! then a few binary searches and one pass over the matching postings: no scoring query,
//! no facet collector, no stored document read beyond the few titles shown. Deleted
//! documents (archived, draft and suspended vendors' products, replaced versions) are
//! skipped with the searcher's own alive bits, so it shows what search would show.
//! Words are matched as search matches them (`vocab::candidates`, `query::expand`).
//! A segment's entries are read when the index reloads, before requests see the segment
//! (see `view`).

use super::index::{self, Fields};
use super::query::{self, Expansion, Parsed};
use super::vocab::{self, SegmentWords};
use crate::error::{Error, Result};
use crate::services::catalog::model::Category;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, SegmentReader, TERMINATED};

/// Field bits of a word (as `vocab::SegmentWords` keeps them).
pub const IN_TITLE: u8 = 1;
pub const IN_BRAND: u8 = 2;
pub const IN_CATEGORY: u8 = 4;
/// What a word found only in a brand or category name is worth next to one in the title.
pub const ELSEWHERE: f32 = 0.5;
/// Typed words looked at at most (the rest are ignored).
pub const MAX_WORDS: usize = 16;
/// Matches taken at most from each postings list of the last (largest) word: lists are
/// ordered best boosted first, so the best products are always among them (as long as
/// fewer are asked for), and brands and categories are counted over the best-ranked
/// matches of a broad prefix rather than over all of them.
pub const PER_LIST: usize = 64;

/// One segment's suggestion data, immutable once built.
#[derive(Debug, Default)]
pub struct SegmentEntries {
    words: Arc<SegmentWords>,
    /// Per word (in `words` order): documents with it in the title, then documents with it
    /// only in a brand or category name; each best boosted first (then by document).
    title_starts: Vec<u32>,
    title_docs: Vec<DocId>,
    rest_starts: Vec<u32>,
    rest_docs: Vec<DocId>,
    /// Per document, together so a match costs one cache line: its boost, brand and
    /// where its category ordinals are in `cat_ords`.
    docs: Vec<DocInfo>,
    cat_ords: Vec<u32>,
    /// Brand names and category ids, by the ordinals above.
    brands: Vec<Box<str>>,
    cats: Vec<Box<str>>,
}

const NO_BRAND: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct DocInfo {
    boost: f32,
    brand: u32,
    cats_from: u32,
    cats_to: u32,
}

/// A word's field bits, the documents with it in the title and those with it elsewhere.
pub type WordDocs = (u8, Vec<DocId>, Vec<DocId>);

/// What a segment's entries are built from (by `read_segment`, or by hand in tests).
#[derive(Debug, Default)]
pub struct Parts {
    pub words: HashMap<Box<str>, WordDocs>,
    /// Per document: ranking boost, brand ordinal, category ordinals.
    pub docs: Vec<(f32, Option<u32>, Vec<u32>)>,
    pub brands: Vec<Box<str>>,
    pub cats: Vec<Box<str>>,
}

impl Parts {
    /// Records that `docs` hold `word` in the field `bit`.
    pub fn add(&mut self, word: &str, bit: u8, docs: impl IntoIterator<Item = DocId>) {
        let e = self.words.entry(Box::from(word)).or_default();
        e.0 |= bit;
        if bit == IN_TITLE {
            e.1.extend(docs);
        } else {
            e.2.extend(docs);
        }
    }
}

impl SegmentEntries {
    pub fn from_parts(p: Parts) -> SegmentEntries {
        let mut words: Vec<(Box<str>, WordDocs)> = p.words.into_iter().collect();
        words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut s = SegmentEntries {
            title_starts: vec![0],
            rest_starts: vec![0],
            ..SegmentEntries::default()
        };
        let boost = |d: &DocId| p.docs.get(*d as usize).map_or(0.0, |x| x.0);
        let by_rank = |a: &DocId, b: &DocId| boost(b).total_cmp(&boost(a)).then(a.cmp(b));
        let mut pairs = Vec::with_capacity(words.len());
        for (w, (bits, mut title, mut rest)) in words {
            title.sort_unstable();
            title.dedup();
            rest.sort_unstable();
            rest.dedup();
            rest.retain(|d| title.binary_search(d).is_err());
            title.sort_unstable_by(by_rank);
            rest.sort_unstable_by(by_rank);
            s.title_docs.extend(title);
            s.rest_docs.extend(rest);
            s.title_starts.push(s.title_docs.len() as u32);
            s.rest_starts.push(s.rest_docs.len() as u32);
            pairs.push((w, bits));
        }
        s.words = Arc::new(SegmentWords::from_pairs(pairs));
        for (boost, brand, cats) in p.docs {
            let cats_from = s.cat_ords.len() as u32;
            s.cat_ords.extend(cats);
            s.docs.push(DocInfo {
                boost,
                brand: brand.unwrap_or(NO_BRAND),
                cats_from,
                cats_to: s.cat_ords.len() as u32,
            });
        }
        s.brands = p.brands;
        s.cats = p.cats;
        s
    }

    fn range(starts: &[u32], i: usize) -> std::ops::Range<usize> {
        let a = starts.get(i).copied().unwrap_or(0) as usize;
        let b = starts.get(i + 1).copied().unwrap_or(0) as usize;
        a..b.max(a)
    }

    fn title(&self, i: usize) -> &[DocId] {
        self.title_docs
            .get(Self::range(&self.title_starts, i))
            .unwrap_or_default()
    }

    fn rest(&self, i: usize) -> &[DocId] {
        self.rest_docs
            .get(Self::range(&self.rest_starts, i))
            .unwrap_or_default()
    }

    fn cats_of(&self, d: &DocInfo) -> &[u32] {
        self.cat_ords
            .get(d.cats_from as usize..d.cats_to.max(d.cats_from) as usize)
            .unwrap_or_default()
    }

    pub fn words(&self) -> &Arc<SegmentWords> {
        &self.words
    }
}

/// The in-stock and popularity boost search applies, and a slight preference for short
/// titles (a completion is read at a glance).
pub fn boost(in_stock: bool, popularity: u64, title_words: u32) -> f32 {
    let s = f32::from(u8::from(in_stock));
    (1.0 + 0.15 * s) * (1.0 + 0.05 * (popularity as f32).ln_1p())
        / (1.0 + 0.05 * title_words as f32)
}

/// The catalog's categories as of a store generation, read from redb again only once the
/// store has committed since (suggestions name categories, search answers count them).
#[derive(Default)]
pub struct CategoryCache {
    categories: Mutex<Option<(u64, Arc<Categories>)>>,
}

/// The catalog's categories, as a list and by id.
#[derive(Debug, Default)]
pub struct Categories {
    pub list: Vec<Category>,
    pub names: CategoryNames,
}

/// Category id → (name, parent id).
pub type CategoryNames = HashMap<String, (String, Option<String>)>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CategoryCache {
    /// The catalog's categories now.
    pub fn categories(&self, store: &crate::store::Store) -> Result<Arc<Categories>> {
        // Read before the transaction: a commit in between only makes the copy look older.
        let generation = store.generation();
        if let Some(c) = self.at(generation) {
            return Ok(c);
        }
        let rtx = store.read()?;
        self.read(&rtx, generation)
    }

    /// The categories as of `rtx`, a read transaction begun once the store was at
    /// `generation` (or later).
    pub fn categories_in(
        &self,
        rtx: &redb::ReadTransaction,
        generation: u64,
    ) -> Result<Arc<Categories>> {
        match self.at(generation) {
            Some(c) => Ok(c),
            None => self.read(rtx, generation),
        }
    }

    fn at(&self, generation: u64) -> Option<Arc<Categories>> {
        match lock(&self.categories).as_ref() {
            Some((g, c)) if *g == generation => Some(c.clone()),
            _ => None,
        }
    }

    fn read(&self, rtx: &redb::ReadTransaction, generation: u64) -> Result<Arc<Categories>> {
        let list = crate::services::catalog::store::all_categories(rtx)?;
        let names = list
            .iter()
            .map(|c| {
                let parent = c.parent.map(|p| p.to_string());
                (c.id.to_string(), (c.name.clone(), parent))
            })
            .collect();
        let categories = Arc::new(Categories { list, names });
        let mut cache = lock(&self.categories);
        if cache.as_ref().is_none_or(|(g, _)| *g < generation) {
            *cache = Some((generation, categories.clone()));
        }
        Ok(categories)
    }
}

/// One segment's entries, read from the index (when a view of the index is built, see
/// `view`).
pub(crate) fn read_segment(seg: &SegmentReader, f: &Fields) -> Result<SegmentEntries> {
    let storage = |e: std::io::Error| Error::Storage(format!("search index: {e}"));
    let mut parts = Parts::default();
    for (bit, field) in [
        (IN_TITLE, f.title),
        (IN_BRAND, f.brand_text),
        (IN_CATEGORY, f.category_text),
    ] {
        let inv = seg.inverted_index(field).map_err(index::ts)?;
        let mut stream = inv.terms().stream().map_err(storage)?;
        let mut docs = Vec::new();
        while stream.advance() {
            let Ok(word) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            let mut postings = inv
                .read_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)
                .map_err(storage)?;
            docs.clear();
            let mut d = postings.doc();
            while d != TERMINATED {
                docs.push(d);
                d = postings.advance();
            }
            parts.add(word, bit, docs.iter().copied());
        }
    }
    let ff = seg.fast_fields();
    let popularity = ff.u64("popularity").ok();
    let in_stock = ff.u64("in_stock").ok();
    let brand = ff.str("brand").map_err(index::ts)?;
    let cats = ff.str("cat_path").map_err(index::ts)?;
    let norms = seg.get_fieldnorms_reader(f.title).ok();
    let names = |col: &Option<tantivy::columnar::StrColumn>| -> Vec<Box<str>> {
        let Some(col) = col else { return Vec::new() };
        let mut s = String::new();
        (0..col.num_terms() as u64)
            .map(|ord| {
                s.clear();
                let _ = col.ord_to_str(ord, &mut s);
                Box::from(s.as_str())
            })
            .collect()
    };
    parts.brands = names(&brand);
    parts.cats = names(&cats);
    for doc in 0..seg.max_doc() {
        let p = popularity.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        let s = in_stock.as_ref().and_then(|c| c.first(doc)).unwrap_or(0) > 0;
        let len = norms.as_ref().map_or(0, |n| n.fieldnorm(doc));
        let b = brand
            .as_ref()
            .and_then(|c| c.term_ords(doc).next())
            .map(|o| o as u32);
        let c = cats
            .as_ref()
            .map(|c| c.term_ords(doc).map(|o| o as u32).collect())
            .unwrap_or_default();
        parts.docs.push((boost(s, p, len), b, c));
    }
    Ok(SegmentEntries::from_parts(parts))
}

/// What matched the typed words across segments.
#[derive(Debug, Default)]
pub struct Found {
    /// (score, segment ordinal, document), best first, at most the `k` asked for.
    pub products: Vec<(f32, u32, DocId)>,
    /// Brand → matching products, most first (then by name).
    pub brands: Vec<(String, u64)>,
    /// Category id → matching products in it or below it.
    pub categories: HashMap<String, u64>,
}

/// Per-thread buffers sized to the largest segment, so a request allocates no
/// per-document arrays: which documents matched the words so far (bit sets) and their
/// scores.
#[derive(Default)]
struct Scratch {
    before: Vec<u64>,
    after: Vec<u64>,
    /// The first word's list per document, and the later words' (but the last's) sum.
    first: Vec<u8>,
    score: Vec<f32>,
    touched: Vec<DocId>,
    scored: Vec<DocId>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The expansions of a typed word (corrections, completions if `prefix`) that the
/// segments' words hold, best first.
pub fn expansions(segments: &[Arc<SegmentEntries>], word: &str, prefix: bool) -> Vec<Expansion> {
    let words: Vec<Arc<SegmentWords>> = segments.iter().map(|s| s.words.clone()).collect();
    let cands = vocab::candidates(&words, word, prefix);
    query::expand(word, prefix, cands.iter().map(|(t, _)| *t))
        .into_iter()
        .filter(|e| vocab::fields_of(&cands, &e.term).is_some())
        .collect()
}

/// The products (top `k`), brands and categories that every typed word leads to (the
/// last one as a prefix if still being typed, typos as search allows them). `alive` says
/// whether a segment's document is still searchable. `k` should not exceed [`PER_LIST`].
pub fn find(
    segments: &[Arc<SegmentEntries>],
    alive: impl Fn(usize, DocId) -> bool,
    parsed: &Parsed,
    k: usize,
) -> Found {
    let expand = |w: &str, prefix| Arc::new(expansions(segments, w, prefix));
    find_with(segments, alive, parsed, k, expand)
}

/// As [`find`], with each typed word's [`expansions`] from `expand` (which may remember
/// them: they depend only on the segments' words).
pub fn find_with(
    segments: &[Arc<SegmentEntries>],
    alive: impl Fn(usize, DocId) -> bool,
    parsed: &Parsed,
    k: usize,
    expand: impl Fn(&str, bool) -> Arc<Vec<Expansion>>,
) -> Found {
    let mut found = Found::default();
    let last = parsed.words.len().saturating_sub(1);
    let mut typed: Vec<(&str, bool)> = parsed
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), parsed.last_is_prefix && i == last))
        .collect();
    typed.extend(parsed.phrases.iter().flatten().map(|w| (w.as_str(), false)));
    typed.truncate(MAX_WORDS);
    if typed.is_empty() {
        return found;
    }
    let mut expanded: Vec<Arc<Vec<Expansion>>> = Vec::with_capacity(typed.len());
    for (w, prefix) in &typed {
        let exp = expand(w, *prefix);
        if exp.is_empty() {
            // A word nothing resembles: nothing matches every word.
            return found;
        }
        expanded.push(exp);
    }
    let mut products: Vec<(f32, u32, DocId)> = Vec::new();
    let mut brands: HashMap<&str, u64> = HashMap::new();
    let mut cats: HashMap<&str, u64> = HashMap::new();
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        for (ord, seg) in segments.iter().enumerate() {
            let mut brand_n = vec![0u64; seg.brands.len()];
            let mut cat_n = vec![0u64; seg.cats.len()];
            let mut on_match = |doc: DocId, score: f32| {
                if !alive(ord, doc) {
                    return false;
                }
                let Some(info) = seg.docs.get(doc as usize) else {
                    return false;
                };
                if let Some(n) = brand_n.get_mut(info.brand as usize) {
                    *n += 1;
                }
                for c in seg.cats_of(info) {
                    if let Some(n) = cat_n.get_mut(*c as usize) {
                        *n += 1;
                    }
                }
                products.push((score * info.boost, ord as u32, doc));
                true
            };
            match_segment(
                &mut scratch,
                seg,
                &expanded,
                &parsed.excluded,
                &mut on_match,
            );
            for (b, n) in seg.brands.iter().zip(brand_n) {
                if n > 0 {
                    *brands.entry(b).or_default() += n;
                }
            }
            for (c, n) in seg.cats.iter().zip(cat_n) {
                if n > 0 {
                    *cats.entry(c).or_default() += n;
                }
            }
        }
    });
    let best = |a: &(f32, u32, DocId), b: &(f32, u32, DocId)| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if products.len() > k && k > 0 {
        products.select_nth_unstable_by(k - 1, best);
    }
    products.truncate(k);
    products.sort_unstable_by(best);
    found.products = products;
    let mut brands: Vec<(String, u64)> = brands
        .into_iter()
        .map(|(b, n)| (b.to_string(), n))
        .collect();
    brands.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    found.brands = brands;
    found.categories = cats.into_iter().map(|(c, n)| (c.to_string(), n)).collect();
    found
}

/// Calls `on_match(doc, score)` once for each document of `seg` holding an expansion of
/// every typed word and no excluded word (at most [`PER_LIST`] per postings list of the
/// last word); the score sums, per word, the best weight of an expansion it holds
/// (halved for one found outside the title). `on_match` says whether the document
/// counted (it is alive).
fn match_segment(
    scratch: &mut Scratch,
    seg: &SegmentEntries,
    expanded: &[Arc<Vec<Expansion>>],
    excluded: &[String],
    on_match: &mut impl FnMut(DocId, f32) -> bool,
) {
    let n = seg.docs.len();
    let blocks = n.div_ceil(64);
    // Per word, its postings lists with their weights, best first; the word with the
    // fewest postings goes first, so the fewest documents are ever touched.
    let mut lists: Vec<Vec<(f32, &[DocId])>> = expanded
        .iter()
        .map(|exp| {
            let mut l: Vec<(f32, &[DocId])> = Vec::new();
            for e in exp.iter() {
                if let Some(i) = seg.words.position(&e.term) {
                    l.push((e.weight, seg.title(i)));
                    l.push((e.weight * ELSEWHERE, seg.rest(i)));
                }
            }
            l.retain(|(_, d)| !d.is_empty());
            l.sort_by(|a, b| b.0.total_cmp(&a.0));
            l
        })
        .collect();
    if lists.iter().any(Vec::is_empty) {
        return;
    }
    lists.sort_by_key(|l| l.iter().map(|(_, d)| d.len()).sum::<usize>());
    let Scratch {
        before,
        after,
        first,
        score,
        touched,
        scored,
    } = scratch;
    if score.len() < n {
        score.resize(n, 0.0);
        first.resize(n, 0);
    }
    // `before`: the documents that matched every earlier word (at the first word, those
    // holding no excluded word); `after`: those that match this one too. Bit sets of a
    // few kilobytes stay in cache while postings are walked in rank (not document) order.
    before.clear();
    after.clear();
    before.resize(blocks, u64::MAX);
    after.resize(blocks, 0);
    for x in excluded {
        if let Some(i) = seg.words.position(x) {
            for &d in seg.title(i).iter().chain(seg.rest(i)) {
                unset(before, d);
            }
        }
    }
    touched.clear();
    scored.clear();
    let words = lists.len();
    // The first word's weight per document is kept as the index of its list (a byte
    // array stays in cache where a float one would not); later words add to `score`.
    let weights0: Vec<f32> = lists
        .first()
        .map(|l| l.iter().map(|(w, _)| *w).collect())
        .unwrap_or_default();
    for (w, list) in lists.iter().enumerate() {
        let last = w + 1 == words;
        for (li, (weight, docs)) in list.iter().enumerate() {
            let mut matched = 0;
            for &d in *docs {
                if last && matched == PER_LIST {
                    break;
                }
                // A document counts for this word at its first (best) list only, and only
                // if it matched every earlier word.
                if !is_set(before, d) || is_set(after, d) {
                    continue;
                }
                let i = d as usize;
                set(after, d);
                let total = if w == 0 {
                    if !last {
                        if let Some(f) = first.get_mut(i) {
                            *f = li as u8;
                            touched.push(d);
                        }
                    }
                    *weight
                } else {
                    let w0 = first
                        .get(i)
                        .and_then(|f| weights0.get(usize::from(*f)))
                        .copied()
                        .unwrap_or(0.0);
                    let Some(s) = score.get_mut(i) else {
                        continue;
                    };
                    if !last {
                        if *s == 0.0 {
                            scored.push(d);
                        }
                        *s += weight;
                    }
                    w0 + *s + if last { *weight } else { 0.0 }
                };
                if last && on_match(d, total) {
                    matched += 1;
                }
            }
        }
        std::mem::swap(before, after);
        after.fill(0);
    }
    for &d in touched.iter() {
        if let Some(f) = first.get_mut(d as usize) {
            *f = 0;
        }
    }
    for &d in scored.iter() {
        if let Some(s) = score.get_mut(d as usize) {
            *s = 0.0;
        }
    }
    touched.clear();
    scored.clear();
}

fn is_set(bits: &[u64], d: DocId) -> bool {
    bits.get(d as usize / 64)
        .is_some_and(|b| b & (1 << (d % 64)) != 0)
}

fn set(bits: &mut [u64], d: DocId) {
    if let Some(b) = bits.get_mut(d as usize / 64) {
        *b |= 1 << (d % 64);
    }
}

fn unset(bits: &mut [u64], d: DocId) {
    if let Some(b) = bits.get_mut(d as usize / 64) {
        *b &= !(1 << (d % 64));
    }
}

#[cfg(test)]
#[path = "suggest_index_tests.rs"]
mod tests;
