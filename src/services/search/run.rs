//! A search request run against one view of the index: the query, filters, sort, page and
//! facets in a single pass, then what each hit shows. It never writes anything and never
//! decides visibility (the index holds only what sells).

use super::facets::FacetCollector;
use super::index;
use super::query::{self, Expansion};
use super::segment_docs;
use super::snippet::Snippets;
use super::view::View;
use super::vocab;
use super::word_hits::{self, WordHits, WordQuery};
use super::{Computed, Hit, SearchAnswer, SearchState, Understood, UnderstoodWord};
use crate::error::Result;
use redb::ReadTransaction;
use std::collections::BTreeMap;
use std::ops::Bound;
use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader, Term};

use super::request::{Affinity, MAX_OFFSET, SearchRequest, Sort, encode_cursor};

fn term_q(t: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(t, IndexRecordOption::Basic))
}

fn any_of(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        queries.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

fn filter(q: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    // Filters narrow the hits without touching relevance.
    (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
}

/// Documents a search may have to collect and still count as light (see [`light`]).
pub const LIGHT_DOCS: usize = 20_000;

/// Whether `req` is cheap enough to answer on the thread that received it, without the
/// hand-over to the blocking pool (two thread wake-ups, about a tenth of a typical search's
/// CPU): every word already worked out on this view (its expansions and its matches), no
/// phrase, and some word matching at most [`LIGHT_DOCS`] documents, which bounds what is
/// collected. A word never seen, a phrase or a query matching most of the catalog takes
/// a turn on the pool (see `cpu`).
pub fn light(view: &View, req: &SearchRequest) -> bool {
    let parsed = query::parse(&req.q, &mut index::analyzer());
    let last = parsed.words.len().saturating_sub(1);
    let mut fewest = usize::MAX;
    for (i, w) in parsed.words.iter().enumerate() {
        let prefix = parsed.last_is_prefix && i == last;
        match view.word_hits.peek(w, prefix) {
            Some(hits) if view.expansions.contains(w, prefix) => {
                fewest = fewest.min(hits.matched())
            }
            _ => return false,
        }
    }
    parsed.phrases.is_empty() && fewest <= LIGHT_DOCS
}

/// Runs `req` on `view`; `rtx` is a read transaction begun once the store was at the
/// given generation (or later).
pub(crate) fn run(
    search: &SearchState,
    view: &View,
    (rtx, generation): (&ReadTransaction, u64),
    req: &SearchRequest,
    affinity: &Affinity,
) -> Result<SearchAnswer> {
    let f = view.fields;
    let searcher = &view.searcher;
    let mut analyzer = index::analyzer();
    let parsed = query::parse(&req.q, &mut analyzer);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut understood = Understood {
        last_word_prefix: parsed.last_is_prefix,
        excluded: parsed.excluded.clone(),
        phrases: parsed.phrases.iter().map(|p| p.join(" ")).collect(),
        ..Understood::default()
    };
    let last = parsed.words.len().saturating_sub(1);
    let mut snippet_terms = BTreeMap::new();
    let mut words = Vec::with_capacity(parsed.words.len());
    for (i, w) in parsed.words.iter().enumerate() {
        let prefix = parsed.last_is_prefix && i == last;
        let exp = view.expansions.get_or(w, prefix, || {
            let cands = vocab::candidates(&view.words, w, prefix);
            query::expand(w, prefix, cands.iter().map(|(t, _)| *t))
                .into_iter()
                .filter_map(|e| vocab::fields_of(&cands, &e.term).map(|m| (e, m)))
                .collect()
        });
        understood.words.push(UnderstoodWord {
            input: w.clone(),
            matches: exp.iter().take(5).map(|(e, _)| e.term.clone()).collect(),
        });
        // Its matches, scores and snippet terms depend only on the view: worked out once
        // (its query, of up to 40 expansions × 5 fields, is built only then).
        let hits = view.word_hits.get_or(w, prefix, || {
            let query = if exp.is_empty() {
                // Nothing in the index resembles it: the word still has to match, so
                // nothing does.
                let exact = Expansion {
                    term: w.clone(),
                    weight: 1.0,
                };
                query::word_query_in(&f, &[(exact, u8::MAX)])
            } else {
                query::word_query_in(&f, &exp)
            };
            WordHits::compute(searcher, query, f.description)
        })?;
        words.push(hits);
    }
    // Every word must match: their lists are intersected once (and kept, as a word's are)
    // rather than leapfrogged by tantivy on every request.
    let all_words = match words.len() {
        0 => None,
        1 => words.pop(),
        _ => Some(
            view.word_hits
                .get_or(&parsed.words.join(" "), parsed.last_is_prefix, || {
                    Ok(WordHits::intersect(&words))
                })?,
        ),
    };
    if let Some(hits) = all_words {
        snippet_terms.extend(hits.snippet_terms.iter().map(|(t, s)| (t.clone(), *s)));
        clauses.push((Occur::Must, Box::new(WordQuery { hits })));
    }
    for p in &parsed.phrases {
        clauses.push((Occur::Must, query::phrase_query(&f, p)));
    }
    for x in &parsed.excluded {
        clauses.push((Occur::MustNot, query::excluded_query(&f, x)));
    }
    if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    if let Some(c) = &req.category {
        let id = crate::services::catalog::queries::resolve_category(rtx, c)?
            .map(|id| id.to_string())
            .unwrap_or_else(|| c.clone());
        clauses.push(filter(term_q(Term::from_field_text(f.cat_path, &id))));
    }
    if !req.vendors.is_empty() {
        let qs = req
            .vendors
            .iter()
            .map(|v| term_q(Term::from_field_text(f.vendor, v)))
            .collect();
        clauses.push(filter(any_of(qs)));
    }
    if !req.brands.is_empty() {
        let qs = req
            .brands
            .iter()
            .map(|v| term_q(Term::from_field_text(f.brand, v)))
            .collect();
        clauses.push(filter(any_of(qs)));
    }
    if req.price != (None, None) {
        let b = |x: Option<i64>| match x {
            Some(v) => Bound::Included(Term::from_field_i64(f.price_min, v)),
            None => Bound::Unbounded,
        };
        clauses.push(filter(Box::new(RangeQuery::new(
            b(req.price.0),
            b(req.price.1),
        ))));
    }
    if req.in_stock {
        clauses.push(filter(term_q(Term::from_field_u64(f.in_stock, 1))));
    }
    let mut by_key: BTreeMap<&str, Vec<Box<dyn Query>>> = BTreeMap::new();
    for (k, v) in &req.attributes {
        by_key
            .entry(k)
            .or_default()
            .push(term_q(Term::from_field_text(
                f.attr,
                &index::attr_value(k, v),
            )));
    }
    for (_, qs) in by_key {
        clauses.push(filter(any_of(qs)));
    }
    // The words' snippet terms were kept with their matches; the other clauses add theirs:
    // the generator tantivy would build from the whole query, without re-reading every
    // expansion's document frequency.
    for (_, q) in &clauses {
        if q.downcast_ref::<WordQuery>().is_none() {
            word_hits::snippet_terms(searcher, q.as_ref(), f.description, &mut snippet_terms)?;
        }
    }
    let query = BooleanQuery::new(clauses);

    let facets = FacetCollector {
        wanted: req.facets,
        fields: f,
        bounds: search.config.price_buckets.clone(),
        docs: view.docs.clone(),
    };
    let top = TopDocs::with_limit(req.limit).and_offset(req.offset);
    let personal =
        req.personalize && !(affinity.categories.is_empty() && affinity.brands.is_empty());
    let (docs, total, counts) = match req.sort {
        Sort::Relevance => {
            let aff = affinity.clone();
            let arrays = view.docs.clone();
            collect(
                searcher,
                &query,
                top.tweak_score(move |seg: &SegmentReader| {
                    // The view's arrays hold the boost; a segment without them reads it
                    // from its columns (same value).
                    let boosts = arrays.iter().find(|d| d.id == seg.segment_id()).cloned();
                    let columns = boosts.is_none();
                    let stock = columns
                        .then(|| seg.fast_fields().u64("in_stock").ok())
                        .flatten();
                    let pop = columns
                        .then(|| seg.fast_fields().u64("popularity").ok())
                        .flatten();
                    let cats = if personal {
                        seg.fast_fields().str("cat_path").ok().flatten()
                    } else {
                        None
                    };
                    let brands = if personal {
                        seg.fast_fields().str("brand").ok().flatten()
                    } else {
                        None
                    };
                    let aff = aff.clone();
                    move |doc: DocId, score: Score| {
                        let mut boost = match boosts.as_ref().and_then(|b| b.boost_of(doc)) {
                            Some(b) => b,
                            None => segment_docs::boost(
                                stock.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
                                pop.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
                            ),
                        };
                        if personal && affinity_hit(&aff, doc, cats.as_ref(), brands.as_ref()) {
                            boost *= 1.1;
                        }
                        score * boost
                    }
                }),
                facets,
            )?
        }
        Sort::PriceAsc | Sort::PriceDesc => {
            let asc = req.sort == Sort::PriceAsc;
            collect(
                searcher,
                &query,
                top.custom_score(move |seg: &SegmentReader| {
                    let col = seg.fast_fields().i64("price_min").ok();
                    move |doc: DocId| {
                        let p = col.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                        if asc { -(p as f64) } else { p as f64 }
                    }
                }),
                facets,
            )?
        }
        Sort::Newest => collect(
            searcher,
            &query,
            top.custom_score(|seg: &SegmentReader| {
                let col = seg.fast_fields().i64("created").ok();
                move |doc: DocId| col.as_ref().and_then(|c| c.first(doc)).unwrap_or(0) as f64
            }),
            facets,
        )?,
        Sort::Popularity => collect(
            searcher,
            &query,
            top.custom_score(|seg: &SegmentReader| {
                let col = seg.fast_fields().u64("popularity").ok();
                move |doc: DocId| col.as_ref().and_then(|c| c.first(doc)).unwrap_or(0) as f64
            }),
            facets,
        )?,
    };

    let snippets = searcher
        .index()
        .tokenizer_for_field(f.description)
        .map(|t| Snippets::new(snippet_terms, t, 160));
    let mut items = Vec::with_capacity(docs.len());
    for (score, addr) in docs {
        let shown = view.shown.get(searcher, &f, addr)?;
        let snippet = match &snippets {
            Ok(g) => g.html(&shown.description),
            Err(_) => String::new(),
        };
        items.push(Hit {
            view: shown.view.clone(),
            view_json: shown.view_json.clone(),
            snippet,
            score,
        });
    }
    let next = req.offset + items.len();
    let next_cursor = (items.len() == req.limit && (next as u64) < total && next <= MAX_OFFSET)
        .then(|| encode_cursor(next));
    Ok(SearchAnswer {
        query_id: uuid::Uuid::now_v7().to_string(),
        computed: std::sync::Arc::new(Computed {
            items,
            total,
            total_exact: true,
            next_cursor,
            facets: super::facets::to_json(search, (rtx, generation), req, counts)?,
            query: understood,
        }),
    })
}

fn affinity_hit(
    aff: &Affinity,
    doc: DocId,
    cats: Option<&tantivy::columnar::StrColumn>,
    brands: Option<&tantivy::columnar::StrColumn>,
) -> bool {
    let mut s = String::new();
    for (col, set) in [(cats, &aff.categories), (brands, &aff.brands)] {
        if let Some(col) = col {
            for ord in col.term_ords(doc) {
                s.clear();
                if col.ord_to_str(ord, &mut s).unwrap_or(false) && set.contains(&s) {
                    return true;
                }
            }
        }
    }
    false
}

type Collected = (Vec<(f32, DocAddress)>, u64, super::facets::Counts);

fn collect<S, C>(
    searcher: &Searcher,
    q: &dyn Query,
    top: C,
    facets: FacetCollector,
) -> Result<Collected>
where
    S: Into<f64> + Clone,
    C: Collector<Fruit = Vec<(S, DocAddress)>>,
{
    let (docs, total, counts) = searcher
        .search(q, &(top, Count, facets))
        .map_err(index::ts)?;
    let docs = docs
        .into_iter()
        .map(|(s, a)| (s.into() as f32, a))
        .collect();
    Ok((docs, total as u64, counts))
}
