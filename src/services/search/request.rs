//! A search request: its parameters checked (every bad one is a 400 naming it), then run
//! against one searcher: the query, filters, sort, page and facets in a single pass.
//! It never writes anything and never decides visibility (the index holds only what sells).

use super::facets::{FacetCollector, Wanted};
use super::index;
use super::query::{self, Expansion};
use super::segment_docs;
use super::snippet::Snippets;
use super::view::View;
use super::vocab;
use super::word_hits::{self, WordHits, WordQuery};
use super::{Computed, FACETS, Hit, SearchAnswer, SearchState, Understood, UnderstoodWord};
use crate::error::{Error, Result};
use redb::ReadTransaction;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader, Term};

/// Deepest result a page may start at: past this, refine the query.
pub const MAX_OFFSET: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Popularity,
}

impl Sort {
    pub const NAMES: &'static [&'static str] = &[
        "relevance",
        "price_asc",
        "price_desc",
        "newest",
        "popularity",
    ];

    fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "relevance" => Sort::Relevance,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            "newest" => Sort::Newest,
            "popularity" => Sort::Popularity,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchRequest {
    pub q: String,
    pub category: Option<String>,
    pub vendors: Vec<String>,
    pub brands: Vec<String>,
    pub price: (Option<i64>, Option<i64>),
    pub in_stock: bool,
    /// (lower-cased key, value)
    pub attributes: Vec<(String, String)>,
    pub sort: Sort,
    pub facets: Wanted,
    pub limit: usize,
    pub offset: usize,
    pub personalize: bool,
}

/// Categories and brands a shopper showed interest in, for a gentle boost.
#[derive(Debug, Clone, Default)]
pub struct Affinity {
    pub categories: HashSet<String>,
    pub brands: HashSet<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// `price=1000..5000`, `price=..5000`, `price=1000..` (minor units, of the from-price).
pub fn parse_price(s: &str) -> Result<(Option<i64>, Option<i64>)> {
    let malformed = || {
        bad(format!(
            "price `{s}` is not a range like 1000..5000 (minor units)"
        ))
    };
    let (lo, hi) = s.split_once("..").ok_or_else(malformed)?;
    let side = |x: &str| -> Result<Option<i64>> {
        if x.is_empty() {
            return Ok(None);
        }
        match x.parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Some(v)),
            _ => Err(malformed()),
        }
    };
    let (lo, hi) = (side(lo)?, side(hi)?);
    if lo.is_none() && hi.is_none() {
        return Err(malformed());
    }
    if let (Some(a), Some(b)) = (lo, hi) {
        if a > b {
            return Err(bad(format!(
                "price `{s}`: the lower bound is above the upper one"
            )));
        }
    }
    Ok((lo, hi))
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(format!("`{name}` must be true or false"))),
    }
}

/// The cursor is the next offset, opaque to clients.
pub fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

fn decode_cursor(c: &str) -> Result<usize> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix('o').and_then(|n| n.parse().ok()))
        .ok_or_else(|| bad("`cursor` is not one this server gave out"))
}

impl SearchRequest {
    /// From the query string's pairs (repeated keys allowed where a list makes sense).
    pub fn parse(pairs: &[(String, String)], cfg: &crate::config::SearchConfig) -> Result<Self> {
        let mut r = SearchRequest {
            q: String::new(),
            category: None,
            vendors: Vec::new(),
            brands: Vec::new(),
            price: (None, None),
            in_stock: false,
            attributes: Vec::new(),
            sort: Sort::Relevance,
            facets: Wanted::default(),
            limit: cfg.default_limit,
            offset: 0,
            personalize: cfg.personalize,
        };
        let mut facets: Option<Vec<String>> = None;
        let mut page = None;
        for (k, v) in pairs {
            match k.as_str() {
                "q" => {
                    if v.chars().count() > cfg.max_query_len {
                        return Err(bad(format!(
                            "`q` is longer than {} characters",
                            cfg.max_query_len
                        )));
                    }
                    r.q = v.clone();
                }
                "category" => r.category = Some(v.clone()),
                "vendor" => r.vendors.push(v.clone()),
                "brand" => r.brands.push(v.clone()),
                "price" => r.price = parse_price(v)?,
                "in_stock" => r.in_stock = parse_bool(k, v)?,
                "personalize" => r.personalize = parse_bool(k, v)? && cfg.personalize,
                "attr" => {
                    let (key, val) = v
                        .split_once(':')
                        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                        .ok_or_else(|| bad(format!("`attr={v}` must look like key:value")))?;
                    r.attributes.push((key.to_lowercase(), val.to_string()));
                }
                "sort" => {
                    r.sort = Sort::parse(v).ok_or_else(|| {
                        bad(format!(
                            "unknown sort `{v}`; use one of {}",
                            Sort::NAMES.join(", ")
                        ))
                    })?
                }
                "facets" => {
                    facets.get_or_insert_with(Vec::new).extend(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                }
                "limit" => {
                    r.limit = match v.parse::<usize>() {
                        Ok(n) if (1..=cfg.max_limit).contains(&n) => n,
                        _ => {
                            return Err(bad(format!(
                                "`limit` must be between 1 and {}",
                                cfg.max_limit
                            )));
                        }
                    }
                }
                "page" => match v.parse::<usize>() {
                    Ok(n) if n >= 1 => page = Some(n),
                    _ => return Err(bad("`page` must be a positive integer")),
                },
                "cursor" => r.offset = decode_cursor(v)?,
                other => return Err(bad(format!("unknown parameter `{other}`"))),
            }
        }
        if let Some(p) = page {
            r.offset = (p - 1).saturating_mul(r.limit);
        }
        if r.offset > MAX_OFFSET {
            return Err(bad(format!(
                "results past the first {MAX_OFFSET} are not served; refine the query"
            )));
        }
        for f in facets.unwrap_or_else(|| cfg.default_facets.clone()) {
            match f.as_str() {
                "category" => r.facets.category = true,
                "brand" => r.facets.brand = true,
                "vendor" => r.facets.vendor = true,
                "price" => r.facets.price = true,
                "attributes" => r.facets.attributes = true,
                other => {
                    return Err(bad(format!(
                        "unknown facet `{other}`; use any of {}",
                        FACETS.join(", ")
                    )));
                }
            }
        }
        Ok(r)
    }
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    fn parse(q: &str) -> Result<SearchRequest> {
        SearchRequest::parse(&pairs(q), &crate::config::SearchConfig::default())
    }

    #[test]
    fn price_ranges() {
        assert_eq!(parse_price("1000..5000").unwrap(), (Some(1000), Some(5000)));
        assert_eq!(parse_price("..5000").unwrap(), (None, Some(5000)));
        assert_eq!(parse_price("1000..").unwrap(), (Some(1000), None));
        for bad in ["..", "10-20", "abc..5", "5..1", "-5..10", "1.5..2"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let long = format!("q={}", "a".repeat(257));
        for q in [
            long.as_str(),
            "sort=cheapest",
            "facets=colour",
            "limit=101",
            "limit=0",
            "price=x",
            "page=0",
            "cursor=zz",
            "nope=1",
            "attr=color",
            "in_stock=maybe",
        ] {
            assert!(matches!(parse(q), Err(Error::BadRequest(_))), "{q}");
        }
        assert!(
            parse(&format!("q={}", "é".repeat(256))).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn pages_and_cursors_become_offsets() {
        assert_eq!(parse("limit=10&page=3").unwrap().offset, 20);
        assert_eq!(
            parse(&format!("cursor={}", encode_cursor(40)))
                .unwrap()
                .offset,
            40
        );
        let r = parse("facets=brand,vendor&attr=Color:Red&attr=size:M&brand=A&brand=B").unwrap();
        assert!(r.facets.brand && r.facets.vendor && !r.facets.category);
        assert_eq!(r.attributes[0], ("color".to_string(), "Red".to_string()));
        assert_eq!(r.brands.len(), 2);
    }
}
