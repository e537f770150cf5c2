//! A hit's snippet: the window of its description with the most weight of the query's
//! terms, the terms in `<b>`, the rest HTML-escaped (as everywhere in Souk, see `html`).
//! The same choice and the same HTML as tantivy's `SnippetGenerator` (its test below holds
//! us to it; tantivy writes an apostrophe as `&#x27;`, we as `&#39;`), made without its
//! costs per token: it lowercased a copy of every token of every description to look it
//! up, though our analyzer's tokens are lowercase already, and escaped each piece into a
//! string of its own.

use crate::html::push_escaped;
use std::collections::BTreeMap;
use std::ops::Range;
use tantivy::Score;
use tantivy::tokenizer::{TextAnalyzer, Token};

/// Snippets of at most `max_chars` bytes for one query.
pub struct Snippets {
    terms: BTreeMap<String, Score>,
    analyzer: TextAnalyzer,
    max_chars: usize,
}

/// A window of the text: its weight and its matched tokens.
struct Window {
    score: Score,
    start: usize,
    stop: usize,
    highlighted: Vec<Range<usize>>,
}

impl Window {
    fn at(start: usize) -> Window {
        Window {
            score: 0.0,
            start,
            stop: start,
            highlighted: Vec::new(),
        }
    }
}

impl Snippets {
    /// `terms`: each term and its weight (see `word_hits::snippet_terms`).
    pub fn new(terms: BTreeMap<String, Score>, analyzer: TextAnalyzer, max_chars: usize) -> Self {
        Snippets {
            terms,
            analyzer,
            max_chars,
        }
    }

    fn weight(&self, token: &Token) -> Option<Score> {
        let text = &token.text;
        if text
            .bytes()
            .any(|b| !b.is_ascii() || b.is_ascii_uppercase())
        {
            self.terms.get(&text.to_lowercase()).copied()
        } else {
            self.terms.get(text.as_str()).copied()
        }
    }

    /// The snippet of `text` as HTML; empty when no term occurs in it.
    pub fn html(&self, text: &str) -> String {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut best: Option<Window> = None;
        let mut window = Window::at(0);
        // A later window wins only with a higher weight: on a tie the first one stays.
        let offer = |w: Window, best: &mut Option<Window>| {
            if w.score > 0.0 && best.as_ref().is_none_or(|b| w.score > b.score) {
                *best = Some(w);
            }
        };
        while let Some(token) = stream.next() {
            if token.offset_to - window.start > self.max_chars {
                let next = Window::at(token.offset_from);
                offer(std::mem::replace(&mut window, next), &mut best);
            }
            window.stop = token.offset_to;
            if let Some(score) = self.weight(token) {
                window.score += score;
                window.highlighted.push(token.offset_from..token.offset_to);
            }
        }
        offer(window, &mut best);
        let Some(best) = best else {
            return String::new();
        };
        let mut ranges = best.highlighted;
        ranges.sort_by_key(|r| (r.start, r.end));
        ranges.dedup();
        let mut html = String::with_capacity(best.stop - best.start + 32);
        let mut from = best.start;
        let mut ranges = ranges.into_iter().peekable();
        while let Some(mut r) = ranges.next() {
            // Overlapping ranges are one highlight; adjacent ones stay apart.
            while let Some(next) = ranges.next_if(|n| r.end > n.start) {
                r.end = r.end.max(next.end);
            }
            push_escaped(&mut html, &text[from..r.start]);
            html.push_str("<b>");
            push_escaped(&mut html, &text[r.clone()]);
            html.push_str("</b>");
            from = r.end;
        }
        push_escaped(&mut html, &text[from..best.stop]);
        html
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::search::index;
    use tantivy::snippet::SnippetGenerator;
    use tantivy::tokenizer::{SimpleTokenizer, TextAnalyzer};

    #[test]
    fn snippets_are_the_ones_tantivy_makes() {
        let terms: BTreeMap<String, Score> = [
            ("teapot", 0.5),
            ("oak", 0.25),
            ("cafe", 0.4),
            ("board", 0.25),
        ]
        .into_iter()
        .map(|(t, s)| (t.to_string(), s))
        .collect();
        let long = "filler words here ".repeat(12);
        let texts = [
            String::new(),
            "nothing to see".to_string(),
            "A Teapot & an <oak> board, \"quoted\" and 'single' ones.".to_string(),
            format!("{long} teapot {long} oak board teapot {long} cafe"),
            format!("oak {long} oak {long} oak"),
            "Café teapot: the TEAPOT of teapots, oak-board".to_string(),
            format!("{long}{long}"),
            "teapot teapot teapot teapot".to_string(),
        ];
        let analyzers = [
            index::analyzer(),
            // Tokens with capitals, which tantivy lowercases to look up.
            TextAnalyzer::from(SimpleTokenizer::default()),
        ];
        for analyzer in analyzers {
            for max in [10, 40, 150, 160] {
                let ours = Snippets::new(terms.clone(), analyzer.clone(), max);
                let field = index::schema().1.description;
                let theirs = SnippetGenerator::new(terms.clone(), analyzer.clone(), field, max);
                for t in &texts {
                    // The apostrophe is escaped as everywhere else in Souk.
                    let want = theirs.snippet(t).to_html().replace("&#x27;", "&#39;");
                    assert_eq!(ours.html(t), want, "{max} {t:?}");
                }
            }
        }
        let html = Snippets::new(terms, index::analyzer(), 160).html(&texts[2]);
        assert_eq!(
            html,
            "A <b>Teapot</b> &amp; an &lt;<b>oak</b>&gt; <b>board</b>, &quot;quoted&quot; and &#39;single&#39; ones"
        );
    }
}
