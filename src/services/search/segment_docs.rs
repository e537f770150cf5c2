//! Per segment of the live index, what ranking and facet counting read for every hit, as
//! plain arrays by document: the in-stock and popularity boost, the from-price, and the
//! term ordinals of the category path, brand, vendor and attributes with their names.
//! Read once when a view of the index is built (segments never change), so a request
//! neither opens fast-field columns nor decodes them per hit. It never decides what matches.
//!
//! Facet counting touches every hit, mostly scattered through the segment, so what it reads
//! per document is packed into one record of 8 or 16 bytes ([`SegmentDocs::sets`]): per
//! column, the id of the document's set of values (documents with the same values share one
//! set; a category path is one set, a brand one per brand). A hit then costs one memory line
//! and one increment per column; each set's count is spread over its values once, at harvest.

use super::facets::bucket;
use super::index::{self, Fields};
use crate::error::Result;
use std::collections::HashMap;
use std::sync::OnceLock;
use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

/// Which column of [`SegmentDocs::columns`] holds what.
pub const CATEGORY: usize = 0;
pub const BRAND: usize = 1;
pub const VENDOR: usize = 2;
pub const ATTRIBUTE: usize = 3;

/// A multi-valued string column: the distinct sets of values documents hold (set 0 is the
/// empty one), each as its term ordinals.
#[derive(Debug)]
pub struct Ords {
    starts: Vec<u32>,
    ords: Vec<u32>,
    /// Value of each ordinal.
    pub names: Vec<Box<str>>,
}

impl Default for Ords {
    fn default() -> Self {
        Ords {
            starts: vec![0, 0],
            ords: Vec::new(),
            names: Vec::new(),
        }
    }
}

impl Ords {
    /// How many distinct sets (the empty one included).
    pub fn sets(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The term ordinals of set `set`.
    pub fn of_set(&self, set: u32) -> &[u32] {
        let s = set as usize;
        let (Some(a), Some(b)) = (self.starts.get(s), self.starts.get(s + 1)) else {
            return &[];
        };
        self.ords
            .get(*a as usize..(*b).max(*a) as usize)
            .unwrap_or_default()
    }

    /// Adds `per_set[s]` to every value of set `s`: hits per term ordinal.
    pub fn spread(&self, per_set: &[u32]) -> Vec<u64> {
        let mut out = vec![0u64; self.names.len()];
        for (set, n) in per_set.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            for o in self.of_set(set as u32) {
                if let Some(slot) = out.get_mut(*o as usize) {
                    *slot += u64::from(*n);
                }
            }
        }
        out
    }
}

/// Per document its set in each column: 8 bytes a document when every column has at most
/// 65,536 sets (the usual case), else 16; the smaller the array, the more of it stays in
/// the processor's cache while hits are counted.
#[derive(Debug)]
pub enum Sets {
    Narrow(Vec<[u16; 4]>),
    Wide(Vec<[u32; 4]>),
}

impl Sets {
    /// `doc`'s sets (all 0, the empty sets, for a document out of range).
    #[inline]
    pub fn of(&self, doc: DocId) -> [u32; 4] {
        let d = doc as usize;
        match self {
            Sets::Narrow(v) => v.get(d).map_or([0; 4], |r| r.map(u32::from)),
            Sets::Wide(v) => v.get(d).copied().unwrap_or_default(),
        }
    }

    fn new(columns: [&[u32]; 4], docs: usize) -> Sets {
        let at = |d: usize| columns.map(|c| c.get(d).copied().unwrap_or(0));
        let narrow = columns
            .iter()
            .all(|c| c.iter().all(|s| u16::try_from(*s).is_ok()));
        if narrow {
            Sets::Narrow(
                (0..docs)
                    .map(|d| at(d).map(|s| u16::try_from(s).unwrap_or(0)))
                    .collect(),
            )
        } else {
            Sets::Wide((0..docs).map(at).collect())
        }
    }
}

#[derive(Debug)]
pub struct SegmentDocs {
    pub id: SegmentId,
    /// The relevance boost of in-stock and popular products (see [`boost`]).
    pub boost: Vec<f32>,
    pub price: Vec<Option<i64>>,
    /// Per document, its set in each of [`Self::columns`].
    pub sets: Sets,
    /// Category path, brand, vendor, attributes (`key=value`).
    pub columns: [Ords; 4],
    /// Per document its price bucket + 1 (0: no price) for the bounds it was worked out
    /// for (the configured ones, fixed while the process runs): worked out at first use.
    buckets: OnceLock<(Vec<i64>, Vec<u8>)>,
}

/// The boost relevance applies: in stock ×1.15, popularity gently (log).
pub fn boost(in_stock: u64, popularity: u64) -> f32 {
    let s = in_stock as f32;
    let p = popularity as f32;
    (1.0 + 0.15 * s) * (1.0 + 0.05 * p.ln_1p())
}

impl SegmentDocs {
    pub fn boost_of(&self, doc: DocId) -> Option<f32> {
        self.boost.get(doc as usize).copied()
    }

    pub fn price_of(&self, doc: DocId) -> Option<i64> {
        self.price.get(doc as usize).copied().flatten()
    }

    /// Per document its bucket under `bounds` plus one (0: no price); `None` when `bounds`
    /// are not the ones first asked for, or too many to fit a byte (then read
    /// [`Self::price_of`]).
    pub fn buckets(&self, bounds: &[i64]) -> Option<&[u8]> {
        let (b, v) = self.buckets.get_or_init(|| {
            if bounds.len() >= usize::from(u8::MAX) {
                return (bounds.to_vec(), Vec::new());
            }
            let v = self
                .price
                .iter()
                .map(|p| p.map_or(0, |p| bucket(bounds, p) as u8 + 1))
                .collect();
            (bounds.to_vec(), v)
        });
        (b.as_slice() == bounds && v.len() == self.price.len()).then_some(v.as_slice())
    }

    /// `doc`'s entry in the buckets [`Self::buckets`] worked out (it must have answered
    /// them for the bounds in use).
    pub fn bucket_at(&self, doc: DocId) -> Option<u8> {
        self.buckets.get()?.1.get(doc as usize).copied()
    }
}

/// A column's sets, and each document's set in it.
fn ords(seg: &SegmentReader, name: &str) -> Result<(Ords, Vec<u32>)> {
    let n = seg.max_doc() as usize;
    let Some(col) = seg.fast_fields().str(name).map_err(index::ts)? else {
        return Ok((Ords::default(), vec![0; n]));
    };
    let mut out = Ords::default();
    let mut known: HashMap<Vec<u32>, u32> = HashMap::new();
    known.insert(Vec::new(), 0);
    let mut of_doc = Vec::with_capacity(n);
    let mut values = Vec::new();
    for doc in 0..seg.max_doc() {
        values.clear();
        values.extend(
            col.term_ords(doc)
                .map(|o| u32::try_from(o).unwrap_or(u32::MAX)),
        );
        let set = match known.get(&values) {
            Some(s) => *s,
            None => {
                let s = out.sets() as u32;
                out.ords.extend_from_slice(&values);
                out.starts.push(out.ords.len() as u32);
                known.insert(values.clone(), s);
                s
            }
        };
        of_doc.push(set);
    }
    let mut s = String::new();
    for ord in 0..col.num_terms() as u64 {
        s.clear();
        col.ord_to_str(ord, &mut s)
            .map_err(|e| crate::error::Error::Storage(format!("search index: {e}")))?;
        out.names.push(Box::from(s.as_str()));
    }
    Ok((out, of_doc))
}

/// One segment's arrays, read from its fast fields.
pub(crate) fn read_segment(seg: &SegmentReader, f: &Fields) -> Result<SegmentDocs> {
    let schema = seg.schema();
    let name = |field| schema.get_field_name(field).to_string();
    let ff = seg.fast_fields();
    let stock = ff.u64(&name(f.in_stock)).ok();
    let pop = ff.u64(&name(f.popularity)).ok();
    let price = ff.i64(&name(f.price_min)).ok();
    let n = seg.max_doc();
    let (cat, cat_sets) = ords(seg, &name(f.cat_path))?;
    let (brand, brand_sets) = ords(seg, &name(f.brand))?;
    let (vendor, vendor_sets) = ords(seg, &name(f.vendor))?;
    let (attr, attr_sets) = ords(seg, &name(f.attr))?;
    let sets = Sets::new(
        [&cat_sets, &brand_sets, &vendor_sets, &attr_sets],
        n as usize,
    );
    Ok(SegmentDocs {
        id: seg.segment_id(),
        boost: (0..n)
            .map(|d| {
                let s = stock.as_ref().and_then(|c| c.first(d)).unwrap_or(0);
                let p = pop.as_ref().and_then(|c| c.first(d)).unwrap_or(0);
                boost(s, p)
            })
            .collect(),
        price: (0..n)
            .map(|d| price.as_ref().and_then(|c| c.first(d)))
            .collect(),
        sets,
        columns: [cat, brand, vendor, attr],
        buckets: OnceLock::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::search::facets::{FacetCollector, Wanted};
    use std::sync::Arc;
    use tantivy::query::{AllQuery, Query, TermQuery};
    use tantivy::schema::IndexRecordOption;
    use tantivy::{TantivyDocument, Term};

    fn index() -> (tantivy::Index, Fields) {
        let fill = |f: &Fields, d: &mut TantivyDocument, round: u64, i: u64| {
            d.add_text(f.title, if i % 3 == 0 { "oak board" } else { "mug" });
            d.add_text(f.cat_path, "root");
            d.add_text(f.cat_path, format!("c{}", i % 4));
            if i % 5 != 0 {
                d.add_text(f.brand, format!("Brand {}", i % 6));
            }
            d.add_text(f.vendor, format!("v{}", (i + round) % 3));
            for k in 0..(i % 3) {
                d.add_text(f.attr, format!("k{k}=v{}", i % (k + 2)));
            }
            if i % 11 != 0 {
                d.add_i64(f.price_min, (i * 137 % 9000) as i64);
            }
            d.add_u64(f.in_stock, i % 2);
            d.add_u64(f.popularity, i % 9 * 7);
        };
        index::two_segments(200, fill, &["p0-6", "p0-7"])
    }

    #[test]
    fn counts_and_boosts_from_arrays_equal_those_from_columns() {
        let (idx, f) = index();
        let searcher = idx.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 2);
        let docs: Vec<Arc<SegmentDocs>> = searcher
            .segment_readers()
            .iter()
            .map(|r| Arc::new(read_segment(r, &f).unwrap()))
            .collect();
        let all = Wanted {
            category: true,
            brand: true,
            vendor: true,
            attributes: true,
            price: true,
        };
        let some = Wanted {
            brand: true,
            price: true,
            ..Wanted::default()
        };
        let queries: Vec<Box<dyn Query>> = vec![
            Box::new(AllQuery),
            Box::new(TermQuery::new(
                Term::from_field_text(f.title, "oak"),
                IndexRecordOption::Basic,
            )),
        ];
        for q in &queries {
            for wanted in [all, some] {
                let collector = |docs: Vec<Arc<SegmentDocs>>| FacetCollector {
                    wanted,
                    fields: f,
                    bounds: vec![1000, 2500, 5000],
                    docs,
                };
                let from_columns = searcher.search(q.as_ref(), &collector(Vec::new())).unwrap();
                let from_arrays = searcher
                    .search(q.as_ref(), &collector(docs.clone()))
                    .unwrap();
                assert_eq!(from_arrays, from_columns);
                assert!(!from_arrays.price.iter().all(|n| *n == 0));
                assert_eq!(from_arrays.category.is_empty(), !wanted.category);
            }
        }
        // Other bounds than the ones first worked out: read per hit from the prices.
        let other = FacetCollector {
            wanted: some,
            fields: f,
            bounds: vec![3000],
            docs: docs.clone(),
        };
        let columns = FacetCollector {
            wanted: some,
            fields: f,
            bounds: vec![3000],
            docs: Vec::new(),
        };
        assert!(docs[0].buckets(&[3000]).is_none());
        assert_eq!(
            searcher.search(&AllQuery, &other).unwrap(),
            searcher.search(&AllQuery, &columns).unwrap()
        );
        // The boost is the one computed from the columns, bit for bit.
        for (r, d) in searcher.segment_readers().iter().zip(&docs) {
            let stock = r.fast_fields().u64("in_stock").unwrap();
            let pop = r.fast_fields().u64("popularity").unwrap();
            for doc in 0..r.max_doc() {
                let s = stock.first(doc).unwrap_or(0) as f32;
                let p = pop.first(doc).unwrap_or(0) as f32;
                let old = (1.0 + 0.15 * s) * (1.0 + 0.05 * p.ln_1p());
                assert_eq!(d.boost_of(doc).unwrap().to_bits(), old.to_bits());
            }
        }
    }

    #[test]
    fn documents_with_the_same_values_share_a_set() {
        let (idx, f) = index();
        let searcher = idx.reader().unwrap().searcher();
        for r in searcher.segment_readers() {
            let d = read_segment(r, &f).unwrap();
            let brand = r.fast_fields().str("brand").unwrap().unwrap();
            let cats = r.fast_fields().str("cat_path").unwrap().unwrap();
            for (col, c) in [(BRAND, &brand), (CATEGORY, &cats)] {
                let ords = &d.columns[col];
                // Brands: 6 plus the empty set; category paths: 4 and the empty one.
                assert_eq!(ords.sets(), if col == BRAND { 7 } else { 5 });
                let mut per_set = vec![0u32; ords.sets()];
                let mut per_ord = vec![0u64; ords.names.len()];
                for doc in 0..r.max_doc() {
                    let set = d.sets.of(doc)[col];
                    let want: Vec<u32> = c.term_ords(doc).map(|o| o as u32).collect();
                    assert_eq!(ords.of_set(set), want.as_slice());
                    per_set[set as usize] += 1;
                    for o in want {
                        per_ord[o as usize] += 1;
                    }
                }
                assert_eq!(ords.spread(&per_set), per_ord);
            }
            // Buckets: price bucket + 1, 0 without a price.
            let b = d.buckets(&[1000, 2500]).unwrap();
            for doc in 0..r.max_doc() {
                let want = d.price_of(doc).map_or(0, |p| bucket(&[1000, 2500], p) + 1);
                assert_eq!(usize::from(b[doc as usize]), want);
                assert_eq!(d.bucket_at(doc), Some(b[doc as usize]));
            }
            assert!(
                d.buckets(&[1000]).is_none(),
                "worked out for one set of bounds"
            );
        }
    }

    #[test]
    fn sets_are_narrow_while_they_fit_two_bytes() {
        let small = [0u32, 3, 65_535];
        let s = Sets::new([&small, &small, &[], &small[..1]], 3);
        assert!(matches!(s, Sets::Narrow(_)));
        assert_eq!(s.of(2), [65_535, 65_535, 0, 0]);
        assert_eq!(s.of(3), [0; 4], "out of range: the empty sets");
        let big = [1u32, 65_536];
        let s = Sets::new([&small, &big, &small, &small], 3);
        assert!(matches!(s, Sets::Wide(_)));
        assert_eq!(s.of(1), [3, 65_536, 3, 3]);
        assert_eq!(s.of(2), [65_535, 0, 65_535, 65_535]);
    }
}
