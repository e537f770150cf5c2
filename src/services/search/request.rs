//! A search request: its parameters checked (every bad one is a 400 naming it), and its
//! pages and cursors. `run` answers it.

use super::FACETS;
use super::facets::Wanted;
use crate::error::{Error, Result};
use std::collections::HashSet;

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
