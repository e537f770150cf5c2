//! Facet counts over every hit of a query (not just the page shown): category (each node
//! counts its descendants), brand, vendor, attributes and price buckets, read from the
//! index's fast fields. It never decides which products match.

use super::index::Fields;
use super::segment_docs::SegmentDocs;
use super::{SearchRequest, SearchState};
use crate::error::Result;
use redb::ReadTransaction;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Which facets to count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Wanted {
    pub category: bool,
    pub brand: bool,
    pub vendor: bool,
    pub attributes: bool,
    pub price: bool,
}

/// Raw counts: value → hits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub category: HashMap<String, u64>,
    pub brand: HashMap<String, u64>,
    pub vendor: HashMap<String, u64>,
    /// `key=value` → hits.
    pub attributes: HashMap<String, u64>,
    /// One count per bucket: below the first bound, between bounds, from the last on.
    pub price: Vec<u64>,
}

pub struct FacetCollector {
    pub wanted: Wanted,
    pub fields: Fields,
    /// Ascending bucket bounds (minor units).
    pub bounds: Vec<i64>,
    /// The view's per-segment arrays; a segment without them is counted from its
    /// fast-field columns instead (same counts, slower).
    pub docs: Vec<Arc<SegmentDocs>>,
}

/// Which bucket a price falls in: `bounds.len() + 1` buckets.
pub fn bucket(bounds: &[i64], price: i64) -> usize {
    bounds.partition_point(|b| *b <= price)
}

/// Where a segment's values are read from.
enum Source {
    Arrays {
        docs: Arc<SegmentDocs>,
        /// Whether `docs` holds the price buckets for these bounds.
        buckets: bool,
    },
    Columns {
        strs: Box<[Option<StrColumn>; 4]>,
        price: Option<Column<i64>>,
    },
}

pub struct SegmentFacets {
    source: Source,
    /// Per wanted column: hits per set of values (arrays) or per term ordinal (columns),
    /// dense; spread over values and named once, at harvest.
    counts: [Option<Vec<u32>>; 4],
    price: Option<Vec<u64>>,
    bounds: Vec<i64>,
}

fn str_column(reader: &SegmentReader, name: &str, on: bool) -> tantivy::Result<Option<StrColumn>> {
    if !on {
        return Ok(None);
    }
    reader.fast_fields().str(name)
}

impl FacetCollector {
    fn wanted_columns(&self) -> [bool; 4] {
        let w = self.wanted;
        [w.category, w.brand, w.vendor, w.attributes]
    }
}

impl Collector for FacetCollector {
    type Fruit = Counts;
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let on = self.wanted_columns();
        let price = self.wanted.price.then(|| vec![0; self.bounds.len() + 1]);
        let arrays = self.docs.iter().find(|d| d.id == reader.segment_id());
        let (source, sizes) = match arrays {
            Some(d) => {
                let sizes = [0, 1, 2, 3].map(|i| d.columns[i].sets());
                let buckets = self.wanted.price && d.buckets(&self.bounds).is_some();
                (
                    Source::Arrays {
                        docs: d.clone(),
                        buckets,
                    },
                    sizes,
                )
            }
            None => {
                let schema = reader.schema();
                let name = |f| schema.get_field_name(f).to_string();
                let f = self.fields;
                let strs = [
                    str_column(reader, &name(f.cat_path), on[0])?,
                    str_column(reader, &name(f.brand), on[1])?,
                    str_column(reader, &name(f.vendor), on[2])?,
                    str_column(reader, &name(f.attr), on[3])?,
                ];
                let sizes = [0, 1, 2, 3].map(|i| strs[i].as_ref().map_or(0, |c| c.num_terms()));
                let price = if self.wanted.price {
                    Some(reader.fast_fields().i64(&name(f.price_min))?)
                } else {
                    None
                };
                (
                    Source::Columns {
                        strs: Box::new(strs),
                        price,
                    },
                    sizes,
                )
            }
        };
        Ok(SegmentFacets {
            source,
            counts: [0, 1, 2, 3].map(|i| on[i].then(|| vec![0; sizes[i]])),
            price,
            bounds: self.bounds.clone(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut out = Counts {
            price: vec![0; self.bounds.len() + 1],
            ..Counts::default()
        };
        for f in fruits {
            for (into, from) in [
                (&mut out.category, f.category),
                (&mut out.brand, f.brand),
                (&mut out.vendor, f.vendor),
                (&mut out.attributes, f.attributes),
            ] {
                for (k, v) in from {
                    *into.entry(k).or_default() += v;
                }
            }
            for (i, v) in f.price.into_iter().enumerate() {
                if let Some(slot) = out.price.get_mut(i) {
                    *slot += v;
                }
            }
        }
        Ok(out)
    }
}

fn add(counts: &mut [u32], ord: u64) {
    if let Some(slot) = usize::try_from(ord).ok().and_then(|o| counts.get_mut(o)) {
        *slot += 1;
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _: Score) {
        let price = match &self.source {
            Source::Arrays { docs, buckets } => {
                // One record per document: its set in every column, read once.
                let sets = docs.sets.of(doc);
                for (counts, set) in self.counts.iter_mut().zip(sets) {
                    if let Some(slot) = counts.as_mut().and_then(|c| c.get_mut(set as usize)) {
                        *slot += 1;
                    }
                }
                if let (true, Some(prices)) = (buckets, &mut self.price) {
                    let k = docs.bucket_at(doc).unwrap_or(0);
                    if let Some(slot) = (k as usize).checked_sub(1).and_then(|k| prices.get_mut(k))
                    {
                        *slot += 1;
                    }
                    return;
                }
                if self.price.is_none() {
                    return;
                }
                docs.price_of(doc)
            }
            Source::Columns { strs, price } => {
                for (counts, col) in self.counts.iter_mut().zip(strs.iter()) {
                    if let (Some(counts), Some(col)) = (counts, col) {
                        for o in col.term_ords(doc) {
                            add(counts, o);
                        }
                    }
                }
                price.as_ref().and_then(|c| c.first(doc))
            }
        };
        if let (Some(buckets), Some(p)) = (&mut self.price, price) {
            if let Some(slot) = buckets.get_mut(bucket(&self.bounds, p)) {
                *slot += 1;
            }
        }
    }

    fn harvest(self) -> Counts {
        let mut s = String::new();
        let mut out: [HashMap<String, u64>; 4] = Default::default();
        for (i, counts) in self.counts.into_iter().enumerate() {
            let Some(counts) = counts else { continue };
            match &self.source {
                Source::Arrays { docs, .. } => {
                    let Some(col) = docs.columns.get(i) else {
                        continue;
                    };
                    for (ord, n) in col.spread(&counts).into_iter().enumerate() {
                        if let (true, Some(name)) = (n > 0, col.names.get(ord)) {
                            out[i].insert(name.to_string(), n);
                        }
                    }
                }
                Source::Columns { strs, .. } => {
                    let Some(col) = strs.get(i).and_then(Option::as_ref) else {
                        continue;
                    };
                    for (ord, n) in counts.into_iter().enumerate() {
                        s.clear();
                        if n > 0 && col.ord_to_str(ord as u64, &mut s).unwrap_or(false) {
                            out[i].insert(s.clone(), u64::from(n));
                        }
                    }
                }
            }
        }
        let [category, brand, vendor, attributes] = out;
        Counts {
            category,
            brand,
            vendor,
            attributes,
            price: self.price.unwrap_or_default(),
        }
    }
}

/// The answer's `facets` object: the counts asked for, largest first (ties by value),
/// categories as a tree with vendor names resolved.
pub(super) fn to_json(
    search: &SearchState,
    (rtx, generation): (&ReadTransaction, u64),
    req: &SearchRequest,
    counts: Counts,
) -> Result<Map<String, Value>> {
    let bounds = &search.config.price_buckets;
    let mut out = Map::new();
    let sorted = |m: HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    if req.facets.category {
        let cats = search.categories.categories_in(rtx, generation)?;
        out.insert(
            "category".into(),
            category_tree(&cats.list, None, &counts.category),
        );
    }
    if req.facets.brand {
        let v: Vec<Value> = sorted(counts.brand)
            .into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect();
        out.insert("brand".into(), Value::Array(v));
    }
    if req.facets.vendor {
        let mut v = Vec::new();
        for (id, count) in sorted(counts.vendor) {
            let name = match id.parse() {
                Ok(vid) => crate::services::vendors::store::get(rtx, vid)?.map(|x| x.name),
                Err(_) => None,
            };
            v.push(json!({"value": id, "name": name, "count": count}));
        }
        out.insert("vendor".into(), Value::Array(v));
    }
    if req.facets.attributes {
        let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (kv, count) in sorted(counts.attributes) {
            if let Some((k, v)) = kv.split_once('=') {
                by_key
                    .entry(k.to_string())
                    .or_default()
                    .push(json!({"value": v, "count": count}));
            }
        }
        out.insert("attributes".into(), json!(by_key));
    }
    if req.facets.price {
        let v: Vec<Value> = counts
            .price
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let min = i.checked_sub(1).and_then(|j| bounds.get(j)).copied();
                let max = bounds.get(i).copied();
                json!({"min": min, "max": max, "count": n})
            })
            .collect();
        out.insert("price".into(), Value::Array(v));
    }
    Ok(out)
}

/// Nodes with hits, each counting its descendants' hits too, children nested.
fn category_tree(
    cats: &[crate::services::catalog::model::Category],
    parent: Option<crate::services::catalog::model::CategoryId>,
    counts: &HashMap<String, u64>,
) -> Value {
    let mut nodes: Vec<(&crate::services::catalog::model::Category, u64)> = cats
        .iter()
        .filter(|c| c.parent == parent)
        .filter_map(|c| counts.get(&c.id.to_string()).map(|n| (c, *n)))
        .collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    Value::Array(
        nodes
            .into_iter()
            .map(|(c, n)| {
                json!({
                    "id": c.id, "name": c.name, "slug": c.slug, "count": n,
                    "children": category_tree(cats, Some(c.id), counts),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn price_buckets_include_their_lower_bound() {
        let b = [1000, 2500, 5000];
        assert_eq!(bucket(&b, 0), 0);
        assert_eq!(bucket(&b, 999), 0);
        assert_eq!(bucket(&b, 1000), 1);
        assert_eq!(bucket(&b, 2499), 1);
        assert_eq!(bucket(&b, 5000), 3);
        assert_eq!(bucket(&b, i64::MAX), 3);
        assert_eq!(bucket(&[], 42), 0);
    }
}
