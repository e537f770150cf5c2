//! Facet counts over every hit of a query (not just the page shown): category (each node
//! counts its descendants), brand, vendor, attributes and price buckets, read from the
//! index's fast fields. It never decides which products match.

use super::index::Fields;
use std::collections::HashMap;
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
}

/// Which bucket a price falls in: `bounds.len() + 1` buckets.
pub fn bucket(bounds: &[i64], price: i64) -> usize {
    bounds.partition_point(|b| *b <= price)
}

pub struct SegmentFacets {
    /// Per column: hits per term ordinal (dense; names are looked up once, at harvest).
    columns: [Option<(StrColumn, Vec<u32>)>; 4],
    price: Option<(Column<i64>, Vec<u64>)>,
    bounds: Vec<i64>,
}

fn str_column(
    reader: &SegmentReader,
    name: &str,
    on: bool,
) -> tantivy::Result<Option<(StrColumn, Vec<u32>)>> {
    if !on {
        return Ok(None);
    }
    Ok(reader.fast_fields().str(name)?.map(|c| {
        let n = c.num_terms();
        (c, vec![0; n])
    }))
}

impl Collector for FacetCollector {
    type Fruit = Counts;
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let w = self.wanted;
        let schema = reader.schema();
        let name = |f| schema.get_field_name(f).to_string();
        let price = if w.price {
            let col = reader.fast_fields().i64(&name(self.fields.price_min))?;
            Some((col, vec![0; self.bounds.len() + 1]))
        } else {
            None
        };
        Ok(SegmentFacets {
            columns: [
                str_column(reader, &name(self.fields.cat_path), w.category)?,
                str_column(reader, &name(self.fields.brand), w.brand)?,
                str_column(reader, &name(self.fields.vendor), w.vendor)?,
                str_column(reader, &name(self.fields.attr), w.attributes)?,
            ],
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

impl SegmentCollector for SegmentFacets {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (col, counts) in self.columns.iter_mut().flatten() {
            for ord in col.term_ords(doc) {
                if let Some(slot) = usize::try_from(ord).ok().and_then(|o| counts.get_mut(o)) {
                    *slot += 1;
                }
            }
        }
        if let Some((col, buckets)) = &mut self.price {
            if let Some(p) = col.first(doc) {
                let i = bucket(&self.bounds, p);
                if let Some(slot) = buckets.get_mut(i) {
                    *slot += 1;
                }
            }
        }
    }

    fn harvest(self) -> Counts {
        let [category, brand, vendor, attributes] = self.columns.map(|c| {
            let mut out = HashMap::new();
            if let Some((col, counts)) = c {
                let mut s = String::new();
                for (ord, n) in counts.into_iter().enumerate() {
                    if n == 0 {
                        continue;
                    }
                    s.clear();
                    if col.ord_to_str(ord as u64, &mut s).unwrap_or(false) {
                        out.insert(s.clone(), u64::from(n));
                    }
                }
            }
            out
        });
        Counts {
            category,
            brand,
            vendor,
            attributes,
            price: self.price.map(|(_, b)| b).unwrap_or_default(),
        }
    }
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
