//! Unit tests of the suggestion index's matching (`find`) on hand-built segments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A product: title, brand, category path (ids), boost.
type Doc<'a> = (&'a str, Option<&'a str>, &'a [&'a str], f32);

/// A segment of `docs`, words split as the index's analyzer does; category ids double
/// as their names' words.
fn segment(docs: &[Doc<'_>]) -> Arc<SegmentEntries> {
    let mut p = Parts::default();
    let mut an = index::analyzer();
    let split = |s: &str, an: &mut tantivy::tokenizer::TextAnalyzer| {
        let mut out = Vec::new();
        let mut ts = an.token_stream(s);
        ts.process(&mut |t| out.push(t.text.clone()));
        out
    };
    for (d, (title, brand, cats, boost)) in docs.iter().enumerate() {
        let d = d as DocId;
        for w in split(title, &mut an) {
            p.add(&w, IN_TITLE, [d]);
        }
        let mut b_ord = None;
        if let Some(b) = brand {
            for w in split(b, &mut an) {
                p.add(&w, IN_BRAND, [d]);
            }
            let b: Box<str> = Box::from(*b);
            b_ord = Some(match p.brands.iter().position(|x| *x == b) {
                Some(i) => i as u32,
                None => {
                    p.brands.push(b);
                    p.brands.len() as u32 - 1
                }
            });
        }
        let mut c_ords = Vec::new();
        for c in *cats {
            p.add(c, IN_CATEGORY, [d]);
            let c: Box<str> = Box::from(*c);
            c_ords.push(match p.cats.iter().position(|x| *x == c) {
                Some(i) => i as u32,
                None => {
                    p.cats.push(c);
                    p.cats.len() as u32 - 1
                }
            });
        }
        p.docs.push((*boost, b_ord, c_ords));
    }
    Arc::new(SegmentEntries::from_parts(p))
}

fn parsed(q: &str) -> Parsed {
    query::parse(q, &mut index::analyzer())
}

/// Titles of the products found for `q` (all alive), best first.
fn titles(segs: &[(Arc<SegmentEntries>, &[Doc<'_>])], q: &str) -> Vec<String> {
    let entries: Vec<Arc<SegmentEntries>> = segs.iter().map(|(e, _)| e.clone()).collect();
    find(&entries, |_, _| true, &parsed(q), 10)
        .products
        .iter()
        .map(|(_, s, d)| segs[*s as usize].1[*d as usize].0.to_string())
        .collect()
}

const SHOP: &[Doc<'static>] = &[
    (
        "Bose Portable Speaker",
        Some("Bose"),
        &["electronics", "audio"],
        1.0,
    ),
    (
        "JBL Flip Bluetooth Speaker",
        Some("JBL"),
        &["electronics", "audio"],
        1.0,
    ),
    (
        "Sony Bluetooth Headphones",
        Some("Sony"),
        &["electronics", "audio"],
        1.0,
    ),
    (
        "Apple iPhone 15 Pro",
        Some("Apple"),
        &["electronics", "phones"],
        1.0,
    ),
    ("Chef Knife", Some("Acme"), &["kitchen"], 1.0),
    ("Speaker Stand", None, &["furniture"], 1.0),
];

#[test]
fn typed_words_match_titles_with_typos_and_the_last_as_a_prefix() {
    let segs = [(segment(SHOP), SHOP)];
    let t = titles(&segs, "speak");
    assert_eq!(t.len(), 3);
    assert!(t.contains(&"Bose Portable Speaker".to_string()));
    assert_eq!(
        titles(&segs, "blutooth speker"),
        vec!["JBL Flip Bluetooth Speaker"],
        "every word must match, typos allowed"
    );
    assert_eq!(titles(&segs, "iphnoe"), vec!["Apple iPhone 15 Pro"]);
    assert_eq!(
        titles(&segs, "bluetooth head"),
        vec!["Sony Bluetooth Headphones"]
    );
    assert!(
        titles(&segs, "head ").is_empty(),
        "a finished short word is not a prefix"
    );
    assert!(titles(&segs, "zebra").is_empty());
    assert!(titles(&segs, "speaker zebra").is_empty());
    assert_eq!(
        titles(&segs, "speaker -bose -stand"),
        vec!["JBL Flip Bluetooth Speaker"],
        "exclusions"
    );
}

#[test]
fn title_matches_rank_first_then_boost() {
    // "audio" is only a category word; "kitchen" a category, and "Kitchen Knife" a title.
    let docs: &[Doc<'_>] = &[
        ("Chef Knife", None, &["kitchen"], 1.5),
        ("Kitchen Knife", None, &["kitchen"], 1.0),
        ("Bread Knife", None, &["kitchen"], 1.2),
    ];
    let segs = [(segment(docs), docs)];
    assert_eq!(
        titles(&segs, "kitchen"),
        vec!["Kitchen Knife", "Chef Knife", "Bread Knife"]
    );
    assert_eq!(
        titles(&segs, "knife"),
        vec!["Chef Knife", "Bread Knife", "Kitchen Knife"],
        "equal matches: the boost decides"
    );
    let segs = [(segment(SHOP), SHOP)];
    assert_eq!(titles(&segs, "audio").len(), 3, "category words match too");
}

#[test]
fn deleted_documents_never_match_or_count() {
    let seg = segment(SHOP);
    // The JBL speaker (document 1) deleted.
    let f = find(&[seg], |_, d| d != 1, &parsed("speaker"), 10);
    let docs: Vec<DocId> = f.products.iter().map(|p| p.2).collect();
    assert_eq!(docs.len(), 2);
    assert!(!docs.contains(&1));
    let brands: Vec<&str> = f.brands.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(brands, vec!["Bose"], "JBL had only the deleted speaker");
    assert_eq!(f.categories.get("audio"), Some(&1));
    assert_eq!(f.categories.get("furniture"), Some(&1));
}

#[test]
fn brands_and_categories_are_counted_over_all_matches_across_segments() {
    let a: &[Doc<'_>] = &[
        ("Blue Mug", Some("Acme"), &["home", "kitchen"], 1.0),
        ("Blue Cup", Some("Acme"), &["home", "kitchen"], 1.0),
    ];
    let b: &[Doc<'_>] = &[
        ("Blue Mug", Some("Zed"), &["home", "kitchen"], 1.0),
        ("Blue Lamp", Some("Zed"), &["home", "lighting"], 1.0),
        ("Blue Rug", Some("Zed"), &["home"], 1.0),
        ("Red Mug", Some("Zed"), &["home", "kitchen"], 1.0),
    ];
    let segs = [segment(a), segment(b)];
    let f = find(&segs, |_, _| true, &parsed("blue"), 2);
    assert_eq!(f.products.len(), 2, "at most k products");
    assert_eq!(
        f.brands,
        vec![("Zed".to_string(), 3), ("Acme".to_string(), 2)]
    );
    assert_eq!(f.categories.get("home"), Some(&5));
    assert_eq!(f.categories.get("kitchen"), Some(&3));
    assert_eq!(f.categories.get("lighting"), Some(&1));
    // Products across segments: ties in score keep segment then document order.
    let f = find(&segs, |_, _| true, &parsed("mug"), 10);
    let at: Vec<(u32, DocId)> = f.products.iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(at, vec![(0, 0), (1, 0), (1, 3)]);
}

#[test]
fn one_request_leaves_nothing_behind_for_the_next() {
    // The per-thread scratch must be clean after every request, including after
    // exclusions and partial matches.
    let segs = [(segment(SHOP), SHOP)];
    for _ in 0..3 {
        assert_eq!(
            titles(&segs, "bluetooth -sony"),
            vec!["JBL Flip Bluetooth Speaker"]
        );
        assert_eq!(
            titles(&segs, "sony bluetooth"),
            vec!["Sony Bluetooth Headphones"]
        );
        assert_eq!(titles(&segs, "sony"), vec!["Sony Bluetooth Headphones"]);
        assert_eq!(titles(&segs, "chef knife"), vec!["Chef Knife"]);
    }
    // A smaller segment after a larger one, and an empty one.
    let small: &[Doc<'_>] = &[("Sony Radio", Some("Sony"), &["audio"], 1.0)];
    let segs = [(segment(small), small)];
    assert_eq!(titles(&segs, "sony"), vec!["Sony Radio"]);
    let f = find(&[segment(&[])], |_, _| true, &parsed("sony"), 10);
    assert!(f.products.is_empty() && f.brands.is_empty());
}

#[test]
fn a_word_counts_once_per_document_at_its_best_weight() {
    // "speakers" and "speaker" both complete "speak"; in one title they count once.
    let docs: &[Doc<'_>] = &[
        ("Speaker Speakers", None, &["audio"], 1.0),
        ("Speaker", None, &["audio"], 1.0),
    ];
    let seg = segment(docs);
    let f = find(&[seg], |_, _| true, &parsed("speak"), 10);
    assert_eq!(f.products.len(), 2);
    assert_eq!(f.categories.get("audio"), Some(&2));
    let best = f.products.iter().map(|p| p.0).fold(0.0f32, f32::max);
    assert!(
        best <= 0.8 + 1e-6,
        "one completion's weight, not two: {best}"
    );
}

#[test]
fn broad_prefixes_take_the_best_ranked_matches_of_each_word() {
    // Many more matches than a list gives: the best boosted still come first, and the
    // counts cover the best-ranked ones.
    let n = PER_LIST * 3;
    let titles: Vec<String> = (0..n).map(|i| format!("Wool Scarf {i}")).collect();
    let brands = ["Common", "Rare"];
    let docs: Vec<Doc<'_>> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let brand = if i < 10 { brands[1] } else { brands[0] };
            // The last ten products rank best; "Rare" ones rank worst.
            let boost = if i >= n - 10 {
                2.0
            } else if i < 10 {
                0.5
            } else {
                1.0
            };
            (t.as_str(), Some(brand), &[][..], boost)
        })
        .collect();
    let seg = segment(&docs);
    let f = find(std::slice::from_ref(&seg), |_, _| true, &parsed("woo"), 10);
    let mut best: Vec<DocId> = f.products.iter().map(|p| p.2).collect();
    best.sort_unstable();
    let want: Vec<DocId> = ((n - 10) as DocId..n as DocId).collect();
    assert_eq!(best, want);
    assert_eq!(f.brands, vec![("Common".to_string(), PER_LIST as u64)]);
    // A deleted best match does not use up the list: the next best comes in.
    let f = find(
        std::slice::from_ref(&seg),
        |_, d| d as usize != n - 1,
        &parsed("woo"),
        10,
    );
    assert!(!f.products.iter().any(|p| p.2 as usize == n - 1));
    assert_eq!(f.brands[0].1, PER_LIST as u64);
    // Narrowed by another word, a match ranked far past the first list is still found:
    // "3" (finished) is the smaller word, so "scarf" is the one cut short.
    let f = find(&[seg], |_, _| true, &parsed("scarf 3 "), 10);
    let docs: Vec<DocId> = f.products.iter().map(|p| p.2).collect();
    assert_eq!(docs, vec![3]);
    assert_eq!(f.brands, vec![("Rare".to_string(), 1)]);
}

#[test]
fn scores_sum_every_word_best_weight() {
    let segs = [segment(SHOP)];
    let score = |q: &str| {
        let f = find(&segs, |_, _| true, &parsed(q), 10);
        assert_eq!(f.products.len(), 1, "{q}");
        f.products[0].0
    };
    assert!((score("jbl flip speaker ") - 3.0).abs() < 1e-6);
    // A completion is worth 0.8, a word found only in the brand half its weight.
    assert!((score("flip speaker jb") - (1.0 + 1.0 + 0.8)).abs() < 1e-6);
    assert!((score("audio portable") - (0.5 + 1.0)).abs() < 1e-6);
    assert!((score("audio bose portable ") - (0.5 + 1.0 + 1.0)).abs() < 1e-6);
}
