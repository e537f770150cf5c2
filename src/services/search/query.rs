//! What a shopper typed, turned into a tantivy query: words (typo tolerant, the last one a
//! prefix), "quoted phrases" and -exclusions, expanded against the index's own vocabulary.
//! It never reads redb and never decides visibility (the index holds only sellable products).

use super::index::Fields;
use tantivy::Term;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

/// The query as parsed, before it meets the index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Words every hit must match (each in any field, typos allowed).
    pub words: Vec<String>,
    /// Whether the last word may be a prefix (the user is still typing it).
    pub last_is_prefix: bool,
    /// Phrases: their words in order, adjacent.
    pub phrases: Vec<Vec<String>>,
    /// Words no hit may contain.
    pub excluded: Vec<String>,
}

impl Parsed {
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }
}

/// Splits `q` into words, "phrases" and -exclusions, normalising each through `analyzer`
/// (the same one the index uses, so "Wi-Fi" and "wifi-ready" split as they were indexed).
/// A trailing space means the last word is finished, so it is not taken as a prefix.
pub fn parse(q: &str, analyzer: &mut TextAnalyzer) -> Parsed {
    let mut out = Parsed::default();
    let mut rest = q;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix('"') {
            let (inner, tail) = match after.find('"') {
                Some(i) => (&after[..i], &after[i + 1..]),
                None => (after, ""),
            };
            let words = tokens(inner, analyzer);
            match words.len() {
                0 => {}
                1 => out.words.extend(words),
                _ => out.phrases.push(words),
            }
            rest = tail;
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let raw = &rest[..end];
        rest = &rest[end..];
        if let Some(neg) = raw.strip_prefix('-') {
            out.excluded.extend(tokens(neg, analyzer));
        } else {
            out.words.extend(tokens(raw, analyzer));
        }
    }
    let ends_in_word = q
        .chars()
        .last()
        .is_some_and(|c| !c.is_whitespace() && c != '"');
    let last_raw_is_word = q
        .split_whitespace()
        .last()
        .is_some_and(|w| !w.starts_with('-') && !w.contains('"'));
    out.last_is_prefix = ends_in_word && last_raw_is_word && !out.words.is_empty();
    out
}

fn tokens(text: &str, analyzer: &mut TextAnalyzer) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    stream.process(&mut |t| out.push(t.text.clone()));
    out
}

/// How many edits a word of this length may carry: none under 5 characters, one from 5,
/// two from 9 (counted in characters, not bytes).
pub fn max_edits(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment), giving up past
/// `max` so that scanning a vocabulary stays cheap. `None` means "more than `max`".
pub fn distance(a: &str, b: &str, max: u8) -> Option<u8> {
    let max = usize::from(max);
    // Most vocabulary words differ too much in length: refused before any allocation.
    if a.chars().count().abs_diff(b.chars().count()) > max {
        return None;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
    }
    let v = d[a.len() * w + b.len()];
    (v <= max).then_some(v as u8)
}

/// Whether `candidate` is an acceptable correction of `word`: same first letter, within
/// the edits its length allows.
pub fn typo_match(word: &str, candidate: &str) -> Option<u8> {
    let max = max_edits(word);
    if max == 0 || word.chars().next() != candidate.chars().next() {
        return None;
    }
    distance(word, candidate, max)
}

/// One indexed term a query word expands to, and how much it is worth next to an exact hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub term: String,
    pub weight: f32,
}

/// Most corrections or completions one word expands to: enough for real typos, bounded so
/// a one-letter prefix cannot build a huge query.
pub const MAX_EXPANSIONS: usize = 40;

/// Picks, from the vocabulary terms `candidates` (those sharing `word`'s first letter),
/// the exact term, completions (if `prefix`) and typo corrections, best first.
pub fn expand<'a>(
    word: &str,
    prefix: bool,
    candidates: impl Iterator<Item = &'a str>,
) -> Vec<Expansion> {
    let mut out: Vec<(u8, Expansion)> = vec![(
        0,
        Expansion {
            term: word.to_string(),
            weight: 1.0,
        },
    )];
    for c in candidates {
        if c == word {
            continue;
        }
        if prefix && c.starts_with(word) {
            out.push((
                1,
                Expansion {
                    term: c.to_string(),
                    weight: 0.8,
                },
            ));
        } else if let Some(edits) = typo_match(word, c) {
            out.push((
                1 + edits,
                Expansion {
                    term: c.to_string(),
                    weight: if edits == 1 { 0.6 } else { 0.4 },
                },
            ));
        } else if prefix && max_edits(word) > 0 {
            // A word being typed may carry a typo too: "blueto" → "bluetooth".
            // The typed part may have lost or gained a letter, so the candidate's head is
            // tried one character shorter and longer too.
            let n = word.chars().count();
            let best = (n.saturating_sub(1)..=n + 1)
                .filter_map(|len| typo_match(word, head(c, len)))
                .min();
            if let Some(edits) = best {
                out.push((
                    2 + edits,
                    Expansion {
                        term: c.to_string(),
                        weight: 0.5,
                    },
                ));
            }
        }
    }
    // Stable: equal ranks keep the vocabulary's (alphabetical) order, so answers are
    // deterministic.
    out.sort_by_key(|(rank, _)| *rank);
    out.truncate(MAX_EXPANSIONS);
    out.into_iter().map(|(_, e)| e).collect()
}

/// The first `chars` characters of `s` (all of it if shorter), without copying.
fn head(s: &str, chars: usize) -> &str {
    match s.char_indices().nth(chars) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// The searchable text fields and their weight: the title counts most.
pub fn weighted_fields(f: &Fields) -> [(Field, f32); 5] {
    [
        (f.title, 4.0),
        (f.brand_text, 2.5),
        (f.category_text, 1.8),
        (f.attrs_text, 1.4),
        (f.description, 1.0),
    ]
}

/// One word, expanded, as "any of these terms in any of these fields": each expansion
/// only in the fields (bit set, in [`weighted_fields`] order) whose vocabulary holds it;
/// a term absent from a field can match nothing there, so leaving it out changes no hit
/// and no score.
pub fn word_query_in(f: &Fields, expansions: &[(Expansion, u8)]) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (e, mask) in expansions {
        for (bit, (field, boost)) in weighted_fields(f).into_iter().enumerate() {
            if mask & (1 << bit) == 0 {
                continue;
            }
            let q = TermQuery::new(
                Term::from_field_text(field, &e.term),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(q), boost * e.weight)),
            ));
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

/// A phrase in the title or the description.
pub fn phrase_query(f: &Fields, words: &[String]) -> Box<dyn Query> {
    let clauses = [(f.title, 4.0), (f.description, 1.0)]
        .into_iter()
        .map(|(field, boost)| {
            let terms = words
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect();
            let q: Box<dyn Query> =
                Box::new(BoostQuery::new(Box::new(PhraseQuery::new(terms)), boost));
            (Occur::Should, q)
        })
        .collect();
    Box::new(BooleanQuery::new(clauses))
}

/// A word that must appear in no searchable field.
pub fn excluded_query(f: &Fields, word: &str) -> Box<dyn Query> {
    let clauses = weighted_fields(f)
        .into_iter()
        .map(|(field, _)| {
            let q: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(field, word),
                IndexRecordOption::Basic,
            ));
            (Occur::Should, q)
        })
        .collect();
    Box::new(BooleanQuery::new(clauses))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn analyzer() -> TextAnalyzer {
        super::super::index::analyzer()
    }

    #[test]
    fn words_phrases_exclusions_and_prefix() {
        let p = parse(r#"Red  "chef knife" -plastic Bluet"#, &mut analyzer());
        assert_eq!(p.words, vec!["red", "bluet"]);
        assert_eq!(
            p.phrases,
            vec![vec!["chef".to_string(), "knife".to_string()]]
        );
        assert_eq!(p.excluded, vec!["plastic"]);
        assert!(p.last_is_prefix);
        let p = parse("bluetooth speaker ", &mut analyzer());
        assert!(!p.last_is_prefix, "a trailing space ends the word");
        let p = parse("speaker -cheap", &mut analyzer());
        assert!(!p.last_is_prefix, "an exclusion is never a prefix");
        let p = parse(r#""unclosed phrase here"#, &mut analyzer());
        assert_eq!(p.phrases.len(), 1);
        assert!(parse("  -only -exclusions ", &mut analyzer()).is_empty());
        assert_eq!(
            parse("Crème-Brûlée", &mut analyzer()).words,
            vec!["creme", "brulee"]
        );
    }

    #[test]
    fn edits_allowed_by_length() {
        assert_eq!(max_edits("ipod"), 0);
        assert_eq!(max_edits("phone"), 1);
        assert_eq!(max_edits("blutooth"), 1);
        assert_eq!(max_edits("bluetooths"), 2);
        assert_eq!(max_edits("héllo"), 1, "characters, not bytes");
    }

    #[test]
    fn distance_counts_transpositions_as_one() {
        assert_eq!(distance("iphnoe", "iphone", 1), Some(1));
        assert_eq!(distance("blutooth", "bluetooth", 1), Some(1));
        assert_eq!(distance("speker", "speaker", 1), Some(1));
        assert_eq!(distance("kitten", "sitting", 2), None);
        assert_eq!(distance("kitten", "sitting", 3), Some(3));
        assert_eq!(distance("same", "same", 0), Some(0));
    }

    #[test]
    fn typos_keep_the_first_letter_and_spare_short_words() {
        assert_eq!(typo_match("iphnoe", "iphone"), Some(1));
        assert_eq!(typo_match("phone", "shone"), None, "first letter differs");
        assert_eq!(typo_match("lamp", "lamb"), None, "short words are exact");
        assert_eq!(typo_match("headphnoes", "headphones"), Some(1));
        assert_eq!(typo_match("hedphnoes", "headphones"), Some(2));
        assert_eq!(typo_match("speker", "spokes"), None);
    }

    #[test]
    fn expansion_ranks_exact_then_prefix_then_typos() {
        let vocab = ["bluetooth", "blue", "bluebell", "blues", "blur"];
        let e = expand("blue", true, vocab.iter().copied());
        let terms: Vec<&str> = e.iter().map(|e| e.term.as_str()).collect();
        assert_eq!(terms[0], "blue");
        assert!(terms.contains(&"bluetooth") && terms.contains(&"bluebell"));
        assert!(!terms.contains(&"blur"), "4 letters: no typos");
        let e = expand("blutooth", false, vocab.iter().copied());
        assert_eq!(e[1].term, "bluetooth");
        let e = expand("blueto", true, ["bluetooth"].iter().copied());
        assert_eq!(e[1].term, "bluetooth");
        let e = expand("bluto", true, ["bluetooth"].iter().copied());
        assert_eq!(e.len(), 2, "a typo inside the typed prefix still completes");
        let e = expand("blüto", true, ["blüetooth", "blü"].iter().copied());
        assert_eq!(e.len(), 2, "heads are cut on characters, not bytes");
        assert_eq!(head("blüetooth", 3), "blü");
        assert_eq!(head("ab", 5), "ab");
    }
}
