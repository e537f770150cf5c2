//! One query word's matches, worked out once per index view: the documents its expansions
//! match (any of the expanded terms in any of their fields) with the score tantivy gives
//! them, per segment. A search then intersects these lists instead of running, on every
//! request, a union of up to 40 expansions × 5 fields of term postings (that union was
//! most of a broad query's cost). The lists are tantivy's own: the word's query is run
//! through its weight and scorer when first needed, so hits and scores are the ones the
//! word's query gives. It never decides what matches.
//!
//! Kept per view (a view's segments never change), up to [`BUDGET_BYTES`] of lists; past
//! it the memo starts over.

use super::index;
use super::view::{Budgeted, Weighed};
use crate::error::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight};
use tantivy::schema::Field;
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

/// Bytes of lists one view keeps at most (a word matching 10,000 documents takes 80 kB).
pub const BUDGET_BYTES: usize = 48 << 20;

/// A word's matches in one segment, ascending by document.
#[derive(Debug, Default)]
struct SegmentHits {
    id: Option<SegmentId>,
    docs: Vec<DocId>,
    scores: Vec<Score>,
    /// What the word's own scorer reported as its size: intersections order their parts
    /// by it, so the parts are summed in the same order as before.
    size_hint: u32,
}

/// A word's matches in every segment of a view, with its query (for what asks a query for
/// its terms) and the snippet terms that query gives.
#[derive(Debug, Default)]
pub struct WordHits {
    segments: Vec<SegmentHits>,
    terms: Option<Box<dyn Query>>,
    /// The word's terms in the snippet field, as tantivy's snippet generator weighs them.
    pub snippet_terms: BTreeMap<String, Score>,
}

/// Adds `query`'s terms in `field` to `into`, each weighed as tantivy's
/// `SnippetGenerator::create` does (1 / (1 + document frequency); absent terms left out),
/// so generators built from merged maps highlight exactly as one built from the query.
pub fn snippet_terms(
    searcher: &Searcher,
    query: &dyn Query,
    field: Field,
    into: &mut BTreeMap<String, Score>,
) -> Result<()> {
    let mut terms: BTreeSet<&Term> = BTreeSet::new();
    query.query_terms(&mut |term, _| {
        if term.field() == field {
            terms.insert(term);
        }
    });
    for term in terms {
        let value = term.value();
        let Some(text) = value.as_str() else {
            continue;
        };
        if into.contains_key(text) {
            continue;
        }
        let doc_freq = searcher.doc_freq(term).map_err(index::ts)?;
        if doc_freq > 0 {
            into.insert(text.to_string(), 1.0 / (1.0 + doc_freq as Score));
        }
    }
    Ok(())
}

impl Weighed for WordHits {
    fn bytes(&self) -> usize {
        self.segments.iter().map(|s| s.docs.len() * 8 + 64).sum()
    }
}

impl WordHits {
    /// Runs `query` (one word's) on every segment of `searcher`, keeping each match and
    /// its score (deleted documents too: collectors skip them as they would), and its
    /// terms in `snippet_field`.
    pub fn compute(
        searcher: &Searcher,
        query: Box<dyn Query>,
        snippet_field: Field,
    ) -> Result<WordHits> {
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(searcher))
            .map_err(index::ts)?;
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let mut scorer = weight.scorer(reader, 1.0).map_err(index::ts)?;
            let mut s = SegmentHits {
                id: Some(reader.segment_id()),
                size_hint: scorer.size_hint(),
                ..SegmentHits::default()
            };
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                s.docs.push(doc);
                s.scores.push(scorer.score());
                doc = scorer.advance();
            }
            segments.push(s);
        }
        let mut terms = BTreeMap::new();
        snippet_terms(searcher, query.as_ref(), snippet_field, &mut terms)?;
        Ok(WordHits {
            segments,
            terms: Some(query),
            snippet_terms: terms,
        })
    }

    /// Documents matched, in all segments.
    pub fn matched(&self) -> usize {
        self.segments.iter().map(|s| s.docs.len()).sum()
    }

    fn segment(&self, id: SegmentId) -> Option<usize> {
        self.segments.iter().position(|s| s.id == Some(id))
    }

    /// The documents every one of `words` matches (words worked out on the same view),
    /// each scored as tantivy's intersection of the words' queries scores it: the parts
    /// ordered by size hint, the first two added, then the sum of the rest. One merge of
    /// sorted lists instead of a leapfrog of virtual seeks per candidate, which was the
    /// largest part of a multi-word search.
    pub fn intersect(words: &[Arc<WordHits>]) -> WordHits {
        let mut segments = Vec::new();
        let first = words.first().map_or(&[][..], |w| &w.segments[..]);
        for (n, seg) in first.iter().enumerate() {
            let mut lists: Vec<&SegmentHits> = Vec::with_capacity(words.len());
            for w in words {
                match w.segments.get(n) {
                    Some(s) if s.id == seg.id => lists.push(s),
                    // Not from the same view: a segment missing from a part matches nothing.
                    _ => lists.clear(),
                }
                if lists.is_empty() {
                    break;
                }
            }
            lists.sort_by_key(|l| l.size_hint);
            let mut hits = SegmentHits {
                id: seg.id,
                ..SegmentHits::default()
            };
            if let Some(shortest) = (0..lists.len()).min_by_key(|&k| lists[k].docs.len()) {
                intersect_lists(&lists, shortest, &mut hits);
            }
            hits.size_hint = hits.docs.len() as u32;
            segments.push(hits);
        }
        let mut snippet_terms = BTreeMap::new();
        let mut terms = Vec::new();
        for w in words {
            snippet_terms.extend(w.snippet_terms.iter().map(|(t, s)| (t.clone(), *s)));
            if let Some(q) = &w.terms {
                terms.push((Occur::Must, q.box_clone()));
            }
        }
        WordHits {
            segments,
            terms: Some(Box::new(BooleanQuery::new(terms))),
            snippet_terms,
        }
    }
}

/// Appends to `out` the documents in all of `lists` (ordered by size hint), driven by the
/// `shortest` one, with their scores summed as tantivy's intersection sums them.
fn intersect_lists(lists: &[&SegmentHits], shortest: usize, out: &mut SegmentHits) {
    let mut at = vec![0usize; lists.len()];
    'docs: for (i, &doc) in lists[shortest].docs.iter().enumerate() {
        at[shortest] = i;
        for (k, list) in lists.iter().enumerate() {
            if k != shortest {
                at[k] = gallop(&list.docs, at[k], doc);
                match list.docs.get(at[k]) {
                    None => break 'docs,
                    Some(&d) if d != doc => continue 'docs,
                    Some(_) => {}
                }
            }
        }
        let score = |k: usize| lists[k].scores.get(at[k]).copied().unwrap_or(0.0);
        let rest: Score = (2..lists.len()).map(score).sum();
        let two = if lists.len() > 1 {
            score(0) + score(1)
        } else {
            score(0)
        };
        out.docs.push(doc);
        out.scores.push(two + rest);
    }
}

/// The first position at or after `from` whose document is `target` or past it.
/// Galloping: targets are usually near, so probe 1, 2, 4, ... ahead, then search only the
/// last step.
fn gallop(docs: &[DocId], from: usize, target: DocId) -> usize {
    let rest = docs.get(from..).unwrap_or_default();
    let mut hi = 1;
    while hi < rest.len() && rest[hi] < target {
        hi *= 2;
    }
    let lo = hi / 2;
    let window = rest.get(lo..hi.min(rest.len())).unwrap_or_default();
    from + lo + window.partition_point(|d| *d < target)
}

/// Typed word (finished, or a prefix) → its matches, for one view.
pub struct HitsMemo(Budgeted<(Box<str>, bool), WordHits>);

impl Default for HitsMemo {
    fn default() -> Self {
        HitsMemo(Budgeted::new(BUDGET_BYTES))
    }
}

impl HitsMemo {
    /// The matches kept for `word`, if they were worked out.
    pub fn peek(&self, word: &str, prefix: bool) -> Option<Arc<WordHits>> {
        self.0.peek(&(Box::from(word), prefix))
    }

    /// The matches `work` gives for `word`, worked out once.
    pub fn get_or(
        &self,
        word: &str,
        prefix: bool,
        work: impl FnOnce() -> Result<WordHits>,
    ) -> Result<Arc<WordHits>> {
        self.0.get_or((Box::from(word), prefix), work)
    }
}

/// A word's query answered from its worked-out matches; its terms are those of the word's
/// own query, kept with the matches (built once, not per request).
#[derive(Debug, Clone)]
pub struct WordQuery {
    pub hits: Arc<WordHits>,
}

impl Query for WordQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(HitsWeight(self.hits.clone())))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        if let Some(q) = &self.hits.terms {
            q.query_terms(visitor)
        }
    }
}

struct HitsWeight(Arc<WordHits>);

impl Weight for HitsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(HitsScorer {
            hits: self.0.clone(),
            segment: self.0.segment(reader.segment_id()),
            at: 0,
            boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut s = self.scorer(reader, 1.0)?;
        if s.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new(
            "word (worked out once per view)",
            s.score(),
        ))
    }
}

/// Walks one segment's list; a segment the list does not know matches nothing.
struct HitsScorer {
    hits: Arc<WordHits>,
    segment: Option<usize>,
    at: usize,
    boost: Score,
}

impl HitsScorer {
    fn list(&self) -> Option<&SegmentHits> {
        self.segment.and_then(|i| self.hits.segments.get(i))
    }
}

impl DocSet for HitsScorer {
    fn advance(&mut self) -> DocId {
        self.at += 1;
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let Some(list) = self.list() else {
            return TERMINATED;
        };
        self.at = gallop(&list.docs, self.at, target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.list()
            .and_then(|l| l.docs.get(self.at).copied())
            .unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.list().map_or(0, |l| l.size_hint)
    }
}

impl Scorer for HitsScorer {
    fn score(&mut self) -> Score {
        let s = self
            .list()
            .and_then(|l| l.scores.get(self.at).copied())
            .unwrap_or(0.0);
        if self.boost == 1.0 { s } else { s * self.boost }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::search::index::{self, Fields};
    use crate::services::search::query::{self, Expansion};
    use tantivy::collector::{Count, TopDocs};
    use tantivy::snippet::SnippetGenerator;

    const WORDS: [&str; 12] = [
        "oak", "board", "boards", "boat", "teapot", "teapots", "cast", "iron", "irons", "pan",
        "pans", "mug",
    ];

    fn index() -> (tantivy::Index, Fields) {
        // Two segments, and some documents deleted in the first.
        let fill = |f: &Fields, d: &mut tantivy::TantivyDocument, round: u64, i: u64| {
            let pick = |k: u64| WORDS[((i * 7 + k * 5 + round * 3) % 12) as usize];
            d.add_text(f.title, format!("{} {} {}", pick(1), pick(2), pick(i % 3)));
            d.add_text(f.brand_text, pick(4));
            d.add_text(
                f.description,
                format!("{} {} {}", pick(5), pick(6), pick(i % 5)),
            );
        };
        index::two_segments(300, fill, &["p0-3", "p0-10"])
    }

    fn word(f: &Fields, terms: &[&str]) -> Box<dyn Query> {
        let exp: Vec<(Expansion, u8)> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let e = Expansion {
                    term: t.to_string(),
                    weight: [1.0, 0.8, 0.6, 0.4][i % 4],
                };
                (e, u8::MAX)
            })
            .collect();
        query::word_query_in(f, &exp)
    }

    #[test]
    fn worked_out_words_give_the_same_hits_and_scores() {
        let (idx, f) = index();
        let reader = idx.reader().unwrap();
        let searcher = reader.searcher();
        assert_eq!(searcher.segment_readers().len(), 2);
        let memo = HitsMemo::default();
        let queries: [&[&[&str]]; 6] = [
            &[&["board", "boards", "boat"]],
            &[&["teapot", "teapots"], &["oak"]],
            &[&["cast"], &["iron", "irons"], &["pan", "pans", "pot"]],
            &[&["mug", "missing"], &["board", "boat", "boards"]],
            &[&["nothing"]],
            &[
                &["cast", "oak"],
                &["iron"],
                &["pan", "pans"],
                &["board", "mug"],
            ],
        ];
        let mut highlighted = 0;
        for (n, words) in queries.iter().enumerate() {
            let plain: Vec<(Occur, Box<dyn Query>)> =
                words.iter().map(|w| (Occur::Must, word(&f, w))).collect();
            let parts: Vec<Arc<WordHits>> = words
                .iter()
                .map(|w| {
                    let key = w.join(" ");
                    memo.get_or(&key, false, || {
                        WordHits::compute(&searcher, word(&f, w), f.description)
                    })
                    .unwrap()
                })
                .collect();
            let cached: Vec<(Occur, Box<dyn Query>)> = parts
                .iter()
                .map(|hits| {
                    let q: Box<dyn Query> = Box::new(WordQuery { hits: hits.clone() });
                    (Occur::Must, q)
                })
                .collect();
            let top = (TopDocs::with_limit(1000), Count);
            let (plain, cached) = (BooleanQuery::new(plain), BooleanQuery::new(cached));
            let a = searcher.search(&plain, &top).unwrap();
            let b = searcher.search(&cached, &top).unwrap();
            // The words' lists intersected once give what tantivy's intersection gives.
            let all = WordQuery {
                hits: Arc::new(WordHits::intersect(&parts)),
            };
            let c = searcher.search(&all, &top).unwrap();
            assert_eq!((&a.0, a.1), (&c.0, c.1), "query {n}: intersected once");
            let mut all_terms = BTreeMap::new();
            snippet_terms(&searcher, &all, f.description, &mut all_terms).unwrap();
            assert_eq!(
                all_terms, all.hits.snippet_terms,
                "query {n}: snippet terms"
            );
            // Snippets from the words' kept terms highlight as tantivy's own generator.
            let own = SnippetGenerator::create(&searcher, &plain, f.description).unwrap();
            let mut terms = BTreeMap::new();
            snippet_terms(&searcher, &cached, f.description, &mut terms).unwrap();
            let kept = SnippetGenerator::new(terms, index::analyzer(), f.description, 150);
            for (_, addr) in a.0.iter().take(50) {
                let doc: tantivy::TantivyDocument = searcher.doc(*addr).unwrap();
                let html = own.snippet_from_doc(&doc).to_html();
                assert_eq!(kept.snippet_from_doc(&doc).to_html(), html);
                highlighted += usize::from(html.contains("<b>"));
            }
            assert_eq!(a.1, b.1, "query {n}: same count");
            assert_eq!(a.0, b.0, "query {n}: same hits, scores and order");
            if n < 4 {
                assert!(a.1 > 0, "query {n} matches something");
            }
        }
        assert!(highlighted > 100, "snippets highlight words: {highlighted}");
        // A word asked again is not worked out again.
        let again = memo.get_or("oak", false, || panic!("worked out twice"));
        assert!(again.is_ok());
    }

    #[test]
    fn seek_finds_the_first_document_at_or_past_the_target() {
        let docs: Vec<DocId> = (0..500).map(|i| i * 3 + (i % 7)).collect();
        let hits = Arc::new(WordHits {
            segments: vec![SegmentHits {
                id: None,
                scores: docs.iter().map(|d| *d as f32).collect(),
                docs: docs.clone(),
                size_hint: 9,
            }],
            ..WordHits::default()
        });
        for start in [0usize, 1, 17, 250, 499] {
            for target in [0u32, 5, 6, 100, 777, 1500, 1502, 5000] {
                let mut s = HitsScorer {
                    hits: hits.clone(),
                    segment: Some(0),
                    at: start,
                    boost: 1.0,
                };
                let from = docs[start];
                let want = docs
                    .iter()
                    .copied()
                    .find(|d| *d >= target.max(from))
                    .unwrap_or(TERMINATED);
                assert_eq!(s.seek(target), want, "from {start} to {target}");
                if want != TERMINATED {
                    assert_eq!(s.score(), want as f32);
                }
            }
        }
        let mut unknown = HitsScorer {
            hits,
            segment: None,
            at: 0,
            boost: 1.0,
        };
        assert_eq!(unknown.doc(), TERMINATED);
        assert_eq!(unknown.seek(3), TERMINATED);
    }
}
