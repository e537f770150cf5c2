//! A search's answer: its hits, total, facets and the query as understood, and its JSON.
//! The API writes that JSON straight into one buffer, each hit's shown fields copied as
//! they were rendered once (see `shown`) instead of escaped again on every answer; a test
//! holds the bytes to what `Serialize` gives.

use super::index::HitView;
use serde::Serialize;
use std::sync::Arc;

/// One hit as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    #[serde(flatten)]
    pub view: Arc<HitView>,
    /// The description around the matched words, HTML-escaped, matches in `<b>`.
    pub snippet: String,
    pub score: f32,
    /// `view` as JSON, rendered once (see `shown`).
    #[serde(skip)]
    pub view_json: Arc<str>,
}

/// The query as the engine understood it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Understood {
    pub words: Vec<UnderstoodWord>,
    pub phrases: Vec<String>,
    pub excluded: Vec<String>,
    pub last_word_prefix: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnderstoodWord {
    pub input: String,
    /// Indexed words it matched (itself, completions, corrections), best first.
    pub matches: Vec<String>,
}

/// A search's answer: its own query id and what was computed, shared (not copied) by
/// every reuse of the same answer from the cache. Reads as the computed part (`Deref`);
/// serialises as one object, the query id first.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    pub query_id: String,
    pub computed: Arc<Computed>,
}

/// Everything of an answer but its query id.
#[derive(Debug)]
pub struct Computed {
    pub items: Vec<Hit>,
    pub total: u64,
    /// Always true: every match is counted.
    pub total_exact: bool,
    pub next_cursor: Option<String>,
    pub facets: serde_json::Map<String, serde_json::Value>,
    pub query: Understood,
}

impl std::ops::Deref for SearchAnswer {
    type Target = Computed;
    fn deref(&self) -> &Computed {
        &self.computed
    }
}

impl Serialize for SearchAnswer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = &*self.computed;
        let mut m = s.serialize_struct("SearchAnswer", 7)?;
        m.serialize_field("query_id", &self.query_id)?;
        m.serialize_field("items", &c.items)?;
        m.serialize_field("total", &c.total)?;
        m.serialize_field("total_exact", &c.total_exact)?;
        m.serialize_field("next_cursor", &c.next_cursor)?;
        m.serialize_field("facets", &c.facets)?;
        m.serialize_field("query", &c.query)?;
        m.end()
    }
}

/// Appends `value` as JSON.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing our own types into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

impl SearchAnswer {
    /// The answer's JSON, the same bytes as `serde_json::to_vec(self)`.
    pub fn to_json(&self) -> Vec<u8> {
        let c = &*self.computed;
        let hits: usize = c
            .items
            .iter()
            .map(|h| h.view_json.len() + h.snippet.len() + 48)
            .sum();
        let mut out = Vec::with_capacity(hits + 4096);
        out.extend_from_slice(b"{\"query_id\":");
        json(&mut out, &self.query_id);
        out.extend_from_slice(b",\"items\":[");
        for (i, hit) in c.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // The view's object without its closing brace, then the hit's own fields.
            let view = hit.view_json.strip_suffix('}').unwrap_or(&hit.view_json);
            out.extend_from_slice(view.as_bytes());
            out.extend_from_slice(b",\"snippet\":");
            json(&mut out, &hit.snippet);
            out.extend_from_slice(b",\"score\":");
            json(&mut out, &hit.score);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"total\":");
        json(&mut out, &c.total);
        out.extend_from_slice(b",\"total_exact\":");
        json(&mut out, &c.total_exact);
        out.extend_from_slice(b",\"next_cursor\":");
        json(&mut out, &c.next_cursor);
        out.extend_from_slice(b",\"facets\":");
        json(&mut out, &c.facets);
        out.extend_from_slice(b",\"query\":");
        json(&mut out, &c.query);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};

    #[test]
    fn the_written_answer_is_what_serde_gives() {
        let hit = |n: u32, brand: Option<&str>| {
            let view = Arc::new(HitView {
                id: format!("id-{n}"),
                title: format!("Tea \"pot\" {n} \\ é\n"),
                slug: format!("tea-pot-{n}"),
                price_min: Money::new(1250, Currency::EUR),
                price_max: Money::new(99_999, Currency::EUR),
                image: (n % 2 == 0).then(|| format!("/media/{n}.jpg")),
                vendor_id: "v".into(),
                vendor_name: "Ember & <Co>".into(),
                brand: brand.map(str::to_string),
                category_id: "c".into(),
                in_stock: n % 3 == 0,
            });
            Hit {
                view_json: serde_json::to_string(&view).unwrap().into(),
                view,
                snippet: format!("a <b>tea</b> \"pot\" {n}"),
                score: 1.0 / (n as f32 + 3.0),
            }
        };
        let facets = serde_json::json!({"brand": [{"value": "A\"b", "count": 3}], "price": []});
        for items in [
            vec![],
            vec![hit(1, None), hit(2, Some("Kestrel")), hit(3, None)],
        ] {
            for next_cursor in [None, Some("b2Zmc2V0".to_string())] {
                let answer = SearchAnswer {
                    query_id: "q-1".into(),
                    computed: Arc::new(Computed {
                        items: items.clone(),
                        total: 1234,
                        total_exact: true,
                        next_cursor,
                        facets: facets.as_object().unwrap().clone(),
                        query: Understood {
                            words: vec![UnderstoodWord {
                                input: "tea".into(),
                                matches: vec!["tea".into(), "teak".into()],
                            }],
                            last_word_prefix: true,
                            ..Understood::default()
                        },
                    }),
                };
                let written = answer.to_json();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    serde_json::to_string(&answer).unwrap()
                );
            }
        }
    }
}
