//! Product pages rendered once per store generation and served to every viewer, each
//! getting their own parts stitched in.
//!
//! A product page is the same for everyone who can see it but for a few per-visitor
//! values: the CSRF token in its forms, the header's cart count, the viewer's name and
//! email (the "back in stock" form is prefilled with it), and whether (and as which role)
//! they are signed in, which picks the header's account menu. So the page is rendered
//! once per (request path, asked variant, signed in, role) with a marker in place of each
//! value, split at the markers, and kept under the store's commit generation
//! ([`crate::web::cache`]): any committed write (price, stock, a renamed category, a new
//! related product) makes the next request render it again. Each request then fills in
//! its own token, cart count, name and email (HTML-escaped) — nothing of one visitor is
//! ever kept in what another is served.
//!
//! Not kept: pages with a flash message (shown once, after a redirect), and products a
//! guest may not see (a draft or a suspended vendor's product, shown to its owner or an
//! admin): those are rendered per request.
//!
//! Templates may print the per-visitor values anywhere (they are plain text markers until
//! filled), but must branch only on `viewer.signed_in` and `viewer.role`, which are part
//! of the key: a condition on the cart count, the name or the email would be decided on
//! the marker.

use super::product::{TEMPLATE, product_ctx};
use crate::app::AppState;
use crate::html::escape;
use crate::services::catalog::model::ProductId;
use crate::web::render::{cart_count, render_html_value};
use crate::web::{Page, Viewer, WebError, csrf};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use std::sync::Arc;

/// What one kept page is for: every viewer with the same key is shown the same page but
/// for the [`Slot`]s.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The request path as sent (it is also the "sign in" link's `next`).
    path: String,
    variant: Option<String>,
    signed_in: bool,
    role: &'static str,
}

/// A per-visitor value in a kept page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Csrf,
    CartCount,
    Name,
    Email,
}

const SLOTS: [(Slot, char); 4] = [
    (Slot::Csrf, 'T'),
    (Slot::CartCount, 'C'),
    (Slot::Name, 'N'),
    (Slot::Email, 'E'),
];

/// The marker standing for `slot`: the per-process random marker (lowercase hex after
/// `csrf`) and an uppercase letter, so no marker is the start of another and no content
/// can contain one. HTML escaping leaves it as it is.
fn marker(base: &str, slot: Slot) -> String {
    let tag = SLOTS
        .iter()
        .find(|(s, _)| *s == slot)
        .map(|(_, c)| *c)
        .unwrap_or('T');
    format!("{base}{tag}")
}

/// A page split at its per-visitor values: text, then the value to put after it.
#[derive(Debug)]
pub struct Kept {
    pub id: ProductId,
    parts: Vec<(String, Option<Slot>)>,
    /// The bytes of text, for sizing the answer.
    text_len: usize,
}

impl Kept {
    /// Splits `html` at the markers of `base`. An occurrence of `base` not followed by a
    /// slot's letter (a template that cut or changed a marker) is refused: such a page
    /// could show a marker, so it is rendered per request instead.
    fn split(id: ProductId, html: &str, base: &str) -> Option<Kept> {
        let mut parts = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find(base) {
            let tag = rest[i + base.len()..].chars().next()?;
            let slot = SLOTS.iter().find(|(_, c)| *c == tag)?.0;
            parts.push((rest[..i].to_string(), Some(slot)));
            rest = &rest[i + base.len() + tag.len_utf8()..];
        }
        parts.push((rest.to_string(), None));
        let text_len = parts.iter().map(|(t, _)| t.len()).sum();
        Some(Kept {
            id,
            parts,
            text_len,
        })
    }

    fn has(&self, slot: Slot) -> bool {
        self.parts.iter().any(|(_, s)| *s == Some(slot))
    }

    /// The page for `viewer`: their CSRF token, cart count, name and email filled in.
    pub fn page_for(&self, state: &AppState, viewer: &Viewer) -> String {
        let token = if self.has(Slot::Csrf) {
            csrf::token(state, viewer)
        } else {
            String::new()
        };
        let count = if self.has(Slot::CartCount) {
            cart_count(state, viewer).to_string()
        } else {
            String::new()
        };
        let name = if self.has(Slot::Name) {
            escape(&viewer.name)
        } else {
            String::new()
        };
        let email = if self.has(Slot::Email) {
            escape(&viewer.email)
        } else {
            String::new()
        };
        let mut out = String::with_capacity(self.text_len + 8 * token.len() + 64);
        for (text, slot) in &self.parts {
            out.push_str(text);
            out.push_str(match slot {
                Some(Slot::Csrf) => &token,
                Some(Slot::CartCount) => &count,
                Some(Slot::Name) => &name,
                Some(Slot::Email) => &email,
                None => "",
            });
        }
        out
    }

    pub fn response(&self, state: &AppState, viewer: &Viewer) -> Response {
        Html(self.page_for(state, viewer)).into_response()
    }
}

/// The kept page for this request, rendered now if the store has changed since it was
/// kept; `None` when this page is not kept (a flash to show, a product guests may not
/// see, an oversized path or variant): the caller renders it for this viewer alone.
pub async fn kept(
    state: &AppState,
    page: &Page,
    slug: &str,
    variant: Option<&str>,
) -> Result<Option<Arc<Kept>>, WebError> {
    if !page.viewer.flash.is_empty()
        || page.path.len() > 256
        || variant.is_some_and(|v| v.len() > 64)
    {
        return Ok(None);
    }
    let role = page.principal().map(|p| p.role.as_str()).unwrap_or("");
    let key = Key {
        path: page.path.clone(),
        variant: variant.map(String::from),
        signed_in: page.principal().is_some(),
        role,
    };
    // Read before the snapshot the page is made from (see `web::cache`).
    let at = crate::web::cache::Generation::now(&state.store);
    let reads = &state.web.reads;
    if let Some(hit) = reads.product_html.get(at, &key) {
        return Ok(Some(hit));
    }
    let base = &state.web.csrf_marker;
    let email = marker(base, Slot::Email);
    // A guest's view of the product: the same for every viewer who can see it.
    let ctx = match product_ctx(state, None, &email, slug, variant).await {
        Ok(ctx) => ctx,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(None),
        Err(e) => return Err(e),
    };
    let id = ctx.product.id;
    let ctx = minijinja::context! {
        csrf_token => marker(base, Slot::Csrf),
        cart_count => marker(base, Slot::CartCount),
        viewer => minijinja::context! {
            signed_in => key.signed_in,
            name => marker(base, Slot::Name),
            email => email,
            role => role,
        },
        flash => Vec::<Value>::new(),
        ..Value::from_serialize(&ctx)
    };
    let html = render_html_value(state, &page.viewer, &page.path, TEMPLATE, ctx)?;
    let Some(kept) = Kept::split(id, &html, base) else {
        tracing::warn!(
            path = %page.path,
            "a product page changed a per-visitor marker; rendering it per request"
        );
        return Ok(None);
    };
    let kept = Arc::new(kept);
    reads.product_html.put(at, key, kept.clone());
    Ok(Some(kept))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const BASE: &str = "csrf0123abcd";

    #[test]
    fn a_page_splits_at_each_marker_and_refuses_a_changed_one() {
        let id = ProductId(uuid::Uuid::nil());
        let html = format!(
            "<a>{}</a><b>{}{}</b>end",
            marker(BASE, Slot::CartCount),
            marker(BASE, Slot::Csrf),
            marker(BASE, Slot::Email)
        );
        let k = Kept::split(id, &html, BASE).unwrap();
        let parts: Vec<(&str, Option<Slot>)> =
            k.parts.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        assert_eq!(
            parts,
            vec![
                ("<a>", Some(Slot::CartCount)),
                ("</a><b>", Some(Slot::Csrf)),
                ("", Some(Slot::Email)),
                ("</b>end", None),
            ]
        );
        assert_eq!(k.text_len, "<a></a><b></b>end".len());
        assert!(!k.has(Slot::Name));
        // A marker cut short or changed by a filter is never served.
        assert!(Kept::split(id, &format!("x{BASE}"), BASE).is_none());
        assert!(Kept::split(id, &format!("x{BASE}t"), BASE).is_none());
        assert!(Kept::split(id, "no markers", BASE).is_some());
    }
}
