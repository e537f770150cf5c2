//! The searchable words of the live index, held in memory per segment (segments never
//! change once written): each segment's terms of the weighted text fields, sorted, with
//! the fields each occurs in. A query word's typo candidates and completions are then a
//! binary search away instead of a walk through every term dictionary on every request.
//! It never decides what matches: the candidates go through `query::expand` as before.

use super::index::{self, Fields};
use super::query;
use crate::error::{Error, Result};
use std::sync::Arc;
use tantivy::SegmentReader;

/// One segment's words: sorted, distinct, each with the bit set of the fields
/// (in `query::weighted_fields` order) that hold it.
#[derive(Debug, Default)]
pub struct SegmentWords {
    terms: Vec<(Box<str>, u8)>,
}

impl SegmentWords {
    /// From (term, field bit) pairs in any order.
    pub fn from_pairs(mut pairs: Vec<(Box<str>, u8)>) -> SegmentWords {
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut terms: Vec<(Box<str>, u8)> = Vec::with_capacity(pairs.len());
        for (t, m) in pairs {
            match terms.last_mut() {
                Some(last) if last.0 == t => last.1 |= m,
                _ => terms.push((t, m)),
            }
        }
        SegmentWords { terms }
    }

    /// The words in `[lo, hi)` (byte order, as tantivy's dictionaries).
    pub fn range(&self, lo: &[u8], hi: &[u8]) -> &[(Box<str>, u8)] {
        let a = self.terms.partition_point(|(t, _)| t.as_bytes() < lo);
        let b = self.terms.partition_point(|(t, _)| t.as_bytes() < hi);
        self.terms.get(a..b.max(a)).unwrap_or_default()
    }

    /// Where `term` is in the sorted words, if it is one of them.
    pub fn position(&self, term: &str) -> Option<usize> {
        self.terms.binary_search_by(|(t, _)| (**t).cmp(term)).ok()
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Candidate words for one query word, across segments: distinct, sorted, with the union
/// of the fields holding each.
pub type Candidates<'a> = Vec<(&'a str, u8)>;

/// One segment's words, read from the index (when a view of the index is built, see
/// `view`).
pub(crate) fn read_segment(seg: &SegmentReader, f: &Fields) -> Result<SegmentWords> {
    let mut pairs = Vec::new();
    for (bit, (field, _)) in query::weighted_fields(f).into_iter().enumerate() {
        let inv = seg.inverted_index(field).map_err(index::ts)?;
        let mut stream = inv
            .terms()
            .stream()
            .map_err(|e| Error::Storage(format!("search index: {e}")))?;
        while stream.advance() {
            if let Ok(s) = std::str::from_utf8(stream.key()) {
                pairs.push((Box::<str>::from(s), 1u8 << bit));
            }
        }
    }
    Ok(SegmentWords::from_pairs(pairs))
}

/// The byte range of the words a query word may stand for: those sharing its first letter
/// when it is long enough for typos, else those it begins (prefix) or itself.
pub fn bounds(word: &str, prefix: bool) -> Option<(Vec<u8>, Vec<u8>)> {
    if query::max_edits(word) > 0 {
        let first = word.chars().next()?;
        let next = char::from_u32(first as u32 + 1).unwrap_or(char::MAX);
        Some((
            first.to_string().into_bytes(),
            next.to_string().into_bytes(),
        ))
    } else if prefix {
        // No UTF-8 byte is 0xFF, so this bounds exactly the words starting with `word`.
        let mut hi = word.as_bytes().to_vec();
        hi.push(0xFF);
        Some((word.as_bytes().to_vec(), hi))
    } else {
        let mut hi = word.as_bytes().to_vec();
        hi.push(0);
        Some((word.as_bytes().to_vec(), hi))
    }
}

/// The words of `segments` that `word` may stand for, distinct and sorted, with their
/// fields. Words too short or too long to be a correction or completion of `word` are
/// left out (they could never pass `query::expand`).
pub fn candidates<'a>(
    segments: &'a [Arc<SegmentWords>],
    word: &str,
    prefix: bool,
) -> Candidates<'a> {
    const BUDGET: usize = 50_000;
    let Some((lo, hi)) = bounds(word, prefix) else {
        return Vec::new();
    };
    let n = word.chars().count();
    let max = usize::from(query::max_edits(word));
    let fits = |t: &str| {
        if max == 0 {
            return true;
        }
        let len = t.chars().count();
        if prefix {
            len + max >= n
        } else {
            len.abs_diff(n) <= max
        }
    };
    let mut out: Vec<(&str, u8)> = Vec::new();
    let mut scanned = 0;
    'segs: for s in segments {
        for (t, m) in s.range(&lo, &hi) {
            scanned += 1;
            if scanned > BUDGET {
                break 'segs;
            }
            if fits(t) {
                out.push((t, *m));
            }
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut merged: Vec<(&str, u8)> = Vec::with_capacity(out.len());
    for (t, m) in out {
        match merged.last_mut() {
            Some(last) if last.0 == t => last.1 |= m,
            _ => merged.push((t, m)),
        }
    }
    merged
}

/// The fields (bit set) holding `term` among `candidates`, if any does.
pub fn fields_of(candidates: &Candidates<'_>, term: &str) -> Option<u8> {
    candidates
        .binary_search_by(|(t, _)| (*t).cmp(term))
        .ok()
        .and_then(|i| candidates.get(i))
        .map(|(_, m)| *m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn words(list: &[(&str, u8)]) -> Arc<SegmentWords> {
        Arc::new(SegmentWords::from_pairs(
            list.iter().map(|(t, m)| (Box::from(*t), *m)).collect(),
        ))
    }

    #[test]
    fn segments_merge_and_fields_are_united() {
        let a = words(&[
            ("speaker", 1),
            ("spoke", 16),
            ("speaker", 16),
            ("bluetooth", 1),
        ]);
        let b = words(&[("speaker", 2), ("speakers", 1), ("sp", 1), ("tea", 1)]);
        assert_eq!(a.len(), 3, "one entry per word within a segment");
        let segs = [a, b];
        let c = candidates(&segs, "speker", false);
        let terms: Vec<&str> = c.iter().map(|(t, _)| *t).collect();
        // Same first letter, within one character of length; "sp" is too short.
        assert_eq!(terms, vec!["speaker", "spoke"]);
        assert_eq!(fields_of(&c, "speaker"), Some(1 | 2 | 16));
        assert_eq!(fields_of(&c, "speakers"), None, "two letters longer");
        assert_eq!(fields_of(&c, "tea"), None);
    }

    #[test]
    fn prefixes_and_short_words() {
        let segs = [words(&[
            ("mug", 1),
            ("mugs", 2),
            ("mu", 1),
            ("muzzle", 4),
            ("mv", 1),
        ])];
        let c = candidates(&segs, "mu", true);
        let terms: Vec<&str> = c.iter().map(|(t, _)| *t).collect();
        assert_eq!(terms, vec!["mu", "mug", "mugs", "muzzle"]);
        let c = candidates(&segs, "mug", false);
        assert_eq!(
            c,
            vec![("mug", 1)],
            "a short finished word only matches itself"
        );
        // A word being typed with a typo: words much longer than it stay candidates.
        let segs = [words(&[("bluetooth", 1), ("bl", 1), ("blue", 1)])];
        let c = candidates(&segs, "bluto", true);
        let terms: Vec<&str> = c.iter().map(|(t, _)| *t).collect();
        assert_eq!(terms, vec!["blue", "bluetooth"]);
    }

    #[test]
    fn non_ascii_first_letters_bound_the_range() {
        let segs = [words(&[("ébène", 1), ("été", 1), ("f", 1), ("ecole", 1)])];
        let c = candidates(&segs, "ébènes", false);
        assert_eq!(c, vec![("ébène", 1)]);
    }
}
