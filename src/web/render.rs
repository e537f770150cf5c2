//! Rendering: the minijinja environment (templates embedded, or read from disk when
//! `storefront.reload_templates` is on; strict about undefined values), the functions
//! templates call (`t`, `money`, `asset`, `canonical`), the context every page gets, and
//! the HTML error pages. Handlers build a context and call [`render`]; they never format
//! HTML themselves.

use super::i18n::{self, I18n};
use super::session::Viewer;
use super::{Flash, assets::Assets};
use crate::app::AppState;
use crate::config::StorefrontConfig;
use crate::error::{Error, Result};
use crate::http::RequestId;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use std::sync::Arc;

/// Our templates, compiled into the binary. The account pages add theirs through
/// `storefront::account::TEMPLATES`.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    (
        "errors/error.html",
        include_str!("../../templates/errors/error.html"),
    ),
    (
        "errors/rebuilding.html",
        include_str!("../../templates/errors/rebuilding.html"),
    ),
];

pub fn embedded_templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    TEMPLATES
        .iter()
        .chain(super::storefront::account::TEMPLATES.iter())
        .chain(super::storefront::TEMPLATES.iter())
}

/// The template environment: built once, or per render while themes are being made.
pub struct Templates {
    env: Environment<'static>,
    reload: bool,
    i18n: Arc<I18n>,
    assets: Arc<Assets>,
    cfg: StorefrontConfig,
    public_url: String,
}

fn configure(env: &mut Environment<'static>, i18n: Arc<I18n>, assets: Arc<Assets>, base: String) {
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // HTML escaping of strings without minijinja's `/` → `&#x2f;` (safe in text and in
    // quoted attributes, and every URL on a page would otherwise grow by a third).
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == AutoEscape::Html
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            return crate::html::write_escaped(out, s).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    // Each text as a template value once, so a lookup without placeholders copies nothing.
    let texts: std::collections::HashMap<String, Value> = i18n
        .entries()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    env.add_function(
        "t",
        move |key: &str, kwargs: Kwargs| -> std::result::Result<Value, minijinja::Error> {
            let Some(value) = texts.get(key) else {
                return Err(minijinja::Error::new(
                    ErrorKind::UndefinedError,
                    format!("no translation for `{key}`"),
                ));
            };
            if kwargs.args().next().is_none() {
                return Ok(value.clone());
            }
            let text = value.as_str().unwrap_or_default();
            let mut args = Vec::new();
            for name in kwargs.args() {
                let v: Value = kwargs.get(name)?;
                args.push((name.to_string(), v.to_string()));
            }
            let refs: Vec<(&str, &str)> =
                args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Ok(Value::from(i18n::fill(text, &refs)))
        },
    );
    env.add_function("money", |minor: i64, currency: &str| {
        i18n::money(minor, currency)
    });
    env.add_function(
        "asset",
        move |name: &str| -> std::result::Result<String, minijinja::Error> {
            assets.url(name).ok_or_else(|| {
                minijinja::Error::new(ErrorKind::UndefinedError, format!("no asset `{name}`"))
            })
        },
    );
    env.add_function("canonical", move |path: &str| format!("{base}{path}"));
}

impl Templates {
    pub fn new(
        cfg: &StorefrontConfig,
        public_url: String,
        i18n: Arc<I18n>,
        assets: Arc<Assets>,
    ) -> Result<Templates> {
        let mut env = Environment::new();
        configure(&mut env, i18n.clone(), assets.clone(), public_url.clone());
        for (name, src) in embedded_templates() {
            env.add_template(name, src)
                .map_err(|e| Error::internal(format!("template {name}: {e:#}")))?;
        }
        Ok(Templates {
            env,
            reload: cfg.reload_templates,
            i18n,
            assets,
            cfg: cfg.clone(),
            public_url,
        })
    }

    fn render_value(
        &self,
        name: &str,
        ctx: Value,
    ) -> std::result::Result<String, minijinja::Error> {
        if self.reload {
            let mut env = Environment::new();
            configure(
                &mut env,
                self.i18n.clone(),
                self.assets.clone(),
                self.public_url.clone(),
            );
            env.set_loader(minijinja::path_loader(self.cfg.templates_dir.clone()));
            return env.get_template(name)?.render(ctx);
        }
        self.env.get_template(name)?.render(ctx)
    }
}

/// What every page knows about the shop and the viewer (the layout's context).
#[derive(Serialize)]
struct Globals<'a> {
    store: StoreBrand<'a>,
    viewer: ViewerCtx<'a>,
    csrf_token: String,
    flash: &'a [Flash],
    cart_count: i64,
    request_path: &'a str,
}

#[derive(Serialize)]
struct StoreBrand<'a> {
    name: &'a str,
    logo_url: &'a str,
    footer_text: &'a str,
    currency: String,
}

#[derive(Serialize)]
struct ViewerCtx<'a> {
    signed_in: bool,
    name: &'a str,
    email: &'a str,
    role: &'a str,
}

/// Items in the viewer's cart (0 on any error: the header must not fail a page). Kept
/// per cart under the store's commit generation, as the read models are (`cache.rs`):
/// any committed write — to this cart or to a product in it — moves the generation, so
/// the count is never older than the newest write; between writes a page does not price
/// the whole cart again for its header.
pub fn cart_count(state: &AppState, viewer: &Viewer) -> i64 {
    use crate::services::orders::store::CartOwner;
    let (owner, key) = match (&viewer.principal, &viewer.cart_token) {
        (Some(p), _) => (CartOwner::User(p.user_id), format!("u{}", p.user_id)),
        (None, Some(t)) => (CartOwner::Guest(t.clone()), format!("g{t}")),
        (None, None) => return 0,
    };
    let counts = &state.web.reads.cart_counts;
    let at = super::cache::Generation::now(&state.store);
    if let Some(n) = counts.get(at, &key) {
        return *n;
    }
    match crate::services::orders::cart::get(state, &owner) {
        Ok(c) => {
            counts.put(at, key, Arc::new(c.item_count));
            c.item_count
        }
        Err(_) => 0,
    }
}

/// The layout's category menu: the top-level categories [{name, slug}], from the cached
/// tree (empty on any error: the header must not fail a page).
fn menu(state: &AppState) -> Value {
    super::cache::category_tree(state)
        .map(|t| t.menu.clone())
        .unwrap_or_else(|_| Value::from(Vec::<Value>::new()))
}

fn globals(state: &AppState, viewer: &Viewer, path: &str, csrf_token: String) -> Value {
    let cfg = &state.config.storefront;
    let g = Globals {
        store: StoreBrand {
            name: &cfg.name,
            logo_url: &cfg.logo_url,
            footer_text: &cfg.footer_text,
            currency: crate::services::catalog::currency(state).to_string(),
        },
        viewer: ViewerCtx {
            signed_in: viewer.principal.is_some(),
            name: &viewer.name,
            email: &viewer.email,
            role: viewer
                .principal
                .as_ref()
                .map(|p| p.role.as_str())
                .unwrap_or(""),
        },
        csrf_token,
        flash: &viewer.flash,
        cart_count: cart_count(state, viewer),
        request_path: path,
    };
    minijinja::context! { menu => menu(state), ..Value::from_serialize(&g) }
}

/// Renders `template` with `ctx` (any `Serialize` struct or `serde_json` object) plus the
/// globals every page has: `store`, `viewer`, `csrf_token`, `flash`, `cart_count`, `menu`,
/// `request_path`. The handler's keys win over the globals.
pub fn render_html(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    template: &str,
    ctx: impl Serialize,
) -> std::result::Result<String, WebError> {
    render_html_value(state, viewer, path, template, Value::from_serialize(&ctx))
}

/// As [`render_html`], for a context already made a template value (e.g. one kept in a
/// cache between requests).
pub fn render_html_value(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    template: &str,
    ctx: Value,
) -> std::result::Result<String, WebError> {
    let csrf = super::csrf::token(state, viewer);
    render_with_token(state, viewer, path, template, ctx, csrf)
}

fn render_with_token(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    template: &str,
    ctx: Value,
    csrf: String,
) -> std::result::Result<String, WebError> {
    match ctx.kind() {
        minijinja::value::ValueKind::Map => {}
        minijinja::value::ValueKind::None | minijinja::value::ValueKind::Undefined => {
            return render_value(state, template, globals(state, viewer, path, csrf));
        }
        _ => {
            return Err(WebError::internal(format!(
                "template {template}: a page context must be an object"
            )));
        }
    }
    render_value(
        state,
        template,
        minijinja::context! { ..ctx, ..globals(state, viewer, path, csrf) },
    )
}

fn render_value(
    state: &AppState,
    template: &str,
    ctx: Value,
) -> std::result::Result<String, WebError> {
    state
        .web
        .templates
        .render_value(template, ctx)
        .map_err(|e| WebError::internal(format!("template {template}: {e:#}")))
}

/// Renders a page template as a 200 `text/html` response (see [`render_html`]).
pub fn render(
    state: &AppState,
    page: &super::Page,
    template: &str,
    ctx: impl Serialize,
) -> std::result::Result<Response, WebError> {
    render_html(state, &page.viewer, &page.path, template, ctx).map(|h| Html(h).into_response())
}

/// Which page an error is shown as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKindPage {
    General,
    /// Search answered 503 while its index is rebuilt.
    SearchRebuilding,
}

/// An error a page handler returns; the page layer turns it into an HTML page in the
/// store's look (with the request id on a 500). Built from a domain [`Error`] with `?`.
#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    /// A translation key for the explanation, or "" to show `detail` alone.
    pub key: &'static str,
    /// What went wrong, for people (4xx only: a 5xx's cause is logged, never shown).
    pub detail: Option<String>,
    pub page: ErrorKindPage,
    pub retry_after: Option<u64>,
}

/// Carried in a response's extensions from the handler to the page layer.
#[derive(Debug, Clone)]
pub struct ErrorPage(pub WebError);

impl WebError {
    pub fn status(status: StatusCode, key: &'static str) -> WebError {
        WebError {
            status,
            key,
            detail: None,
            page: ErrorKindPage::General,
            retry_after: None,
        }
    }

    pub fn not_found() -> WebError {
        WebError::status(StatusCode::NOT_FOUND, "errors.not_found")
    }

    pub fn internal(cause: impl std::fmt::Display) -> WebError {
        tracing::error!(error = %cause, "page failed");
        WebError::status(StatusCode::INTERNAL_SERVER_ERROR, "errors.internal")
    }

    /// For search calls: a 503 becomes the friendly "search is rebuilding" page.
    pub fn search(e: Error) -> WebError {
        let mut w = WebError::from(e);
        if w.status == StatusCode::SERVICE_UNAVAILABLE {
            w.page = ErrorKindPage::SearchRebuilding;
        }
        w
    }
}

impl From<Error> for WebError {
    fn from(e: Error) -> WebError {
        let status = crate::http::problem::status_of(&e);
        let key = match status {
            StatusCode::NOT_FOUND => "errors.not_found",
            StatusCode::FORBIDDEN => "errors.forbidden",
            StatusCode::UNAUTHORIZED => "errors.unauthorized",
            StatusCode::SERVICE_UNAVAILABLE => "errors.unavailable",
            StatusCode::TOO_MANY_REQUESTS => "errors.rate_limited",
            s if s.is_server_error() => "errors.internal",
            _ => "errors.bad_request",
        };
        let retry_after = match &e {
            Error::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Error::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let detail = if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "page failed");
            None
        } else if status == StatusCode::NOT_FOUND {
            None
        } else {
            Some(e.to_string())
        };
        WebError {
            status,
            key,
            detail,
            page: ErrorKindPage::General,
            retry_after,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        // text/html so the outer layer leaves it alone even if no page layer renders it.
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res.extensions_mut().insert(ErrorPage(self));
        res
    }
}

#[derive(Serialize)]
struct ErrorCtx {
    status: u16,
    title: String,
    message: String,
    detail: Option<String>,
    request_id: Option<String>,
    retry_after: Option<u64>,
}

/// The error page for `page` in the store's look; if even that fails, plain HTML.
pub fn error_html(state: &AppState, viewer: &Viewer, path: &str, e: &WebError) -> String {
    let i18n = &state.web.i18n;
    let ctx = ErrorCtx {
        status: e.status.as_u16(),
        title: i18n
            .lookup(&format!("errors.title_{}", e.status.as_u16()))
            .map(String::from)
            .unwrap_or_else(|| i18n.t("errors.title_default")),
        message: if e.key.is_empty() {
            String::new()
        } else {
            i18n.t(e.key)
        },
        detail: e.detail.clone(),
        request_id: RequestId::current().map(|r| r.as_str().to_owned()),
        retry_after: e.retry_after,
    };
    let template = match e.page {
        ErrorKindPage::General => "errors/error.html",
        ErrorKindPage::SearchRebuilding => "errors/rebuilding.html",
    };
    match render_html(state, viewer, path, template, &ctx) {
        Ok(h) => h,
        Err(_) => format!(
            "<!doctype html><title>{0}</title><h1>{0}</h1><p>{1}</p>",
            e.status.as_u16(),
            crate::html::escape(&ctx.message)
        ),
    }
}

/// Replaces an error marker response with its page, keeping status and useful headers.
pub fn error_response(state: &AppState, viewer: &Viewer, path: &str, res: Response) -> Response {
    let Some(ErrorPage(e)) = res.extensions().get::<ErrorPage>().cloned() else {
        return res;
    };
    let mut out = (e.status, Html(error_html(state, viewer, path, &e))).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = res.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// A panicking page handler becomes the 500 page (the message goes to the log only).
pub fn panic_page(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = msg, "page handler panicked");
    WebError::status(StatusCode::INTERNAL_SERVER_ERROR, "errors.internal").into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }

    /// A template added to `templates/` but not to an embedded list would work with
    /// `reload_templates` and fail in the shipped binary: every file must be embedded,
    /// with the same text.
    #[test]
    fn every_template_file_is_embedded() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = Vec::new();
        files(&base, &base, &mut on_disk);
        for name in &on_disk {
            let (_, src) = embedded_templates()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("templates/{name} is not embedded"));
            assert_eq!(
                *src,
                std::fs::read_to_string(base.join(name)).unwrap(),
                "{name}"
            );
        }
        assert_eq!(
            embedded_templates().count(),
            on_disk.len(),
            "an embedded template has no file"
        );
    }
}
