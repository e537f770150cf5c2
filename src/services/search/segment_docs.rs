//! Per segment of the live index, what ranking and facet counting read for every hit, as
//! plain arrays by document: the in-stock and popularity boost, the from-price, and the
//! term ordinals of the category path, brand, vendor and attributes with their names.
//! Read once when a view of the index is built (segments never change), so a request
//! neither opens fast-field columns nor decodes them per hit. It never decides what matches.

use super::index::{self, Fields};
use crate::error::Result;
use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

/// Which column of [`SegmentDocs::columns`] holds what.
pub const CATEGORY: usize = 0;
pub const BRAND: usize = 1;
pub const VENDOR: usize = 2;
pub const ATTRIBUTE: usize = 3;

/// A multi-valued string column: per document the ordinals of its values.
#[derive(Debug, Default)]
pub struct Ords {
    starts: Vec<u32>,
    ords: Vec<u32>,
    /// Value of each ordinal.
    pub names: Vec<Box<str>>,
}

impl Ords {
    pub fn of(&self, doc: DocId) -> &[u32] {
        let d = doc as usize;
        let (Some(a), Some(b)) = (self.starts.get(d), self.starts.get(d + 1)) else {
            return &[];
        };
        self.ords
            .get(*a as usize..(*b).max(*a) as usize)
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct SegmentDocs {
    pub id: SegmentId,
    /// The relevance boost of in-stock and popular products (see [`boost`]).
    pub boost: Vec<f32>,
    pub price: Vec<Option<i64>>,
    /// Category path, brand, vendor, attributes (`key=value`).
    pub columns: [Ords; 4],
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
}

fn ords(seg: &SegmentReader, name: &str) -> Result<Ords> {
    let Some(col) = seg.fast_fields().str(name).map_err(index::ts)? else {
        return Ok(Ords {
            starts: vec![0; seg.max_doc() as usize + 1],
            ..Ords::default()
        });
    };
    let mut out = Ords {
        starts: Vec::with_capacity(seg.max_doc() as usize + 1),
        ..Ords::default()
    };
    out.starts.push(0);
    for doc in 0..seg.max_doc() {
        out.ords.extend(
            col.term_ords(doc)
                .map(|o| u32::try_from(o).unwrap_or(u32::MAX)),
        );
        out.starts.push(out.ords.len() as u32);
    }
    let mut s = String::new();
    for ord in 0..col.num_terms() as u64 {
        s.clear();
        col.ord_to_str(ord, &mut s)
            .map_err(|e| crate::error::Error::Storage(format!("search index: {e}")))?;
        out.names.push(Box::from(s.as_str()));
    }
    Ok(out)
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
        columns: [
            ords(seg, &name(f.cat_path))?,
            ords(seg, &name(f.brand))?,
            ords(seg, &name(f.vendor))?,
            ords(seg, &name(f.attr))?,
        ],
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
}
