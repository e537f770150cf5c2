//! Server-rendered pages: the storefront (and, later, vendor and admin pages) rendered by
//! souk itself with minijinja, calling the same service functions as the JSON API — never
//! HTTP calls to ourselves, never a redb table. Everything here works without JavaScript.
//!
//! # Contract for page modules (read this before adding a page)
//!
//! **Routes.** A page module exposes `pub fn router() -> Router<AppState>` with absolute
//! paths (`/account/orders`), merged in [`router`] below, one line per module. Every
//! route merged there runs inside the page layer ([`session::layer`]), which resolves
//! the [`Viewer`] from the cookies, turns a returned [`WebError`] into an HTML error page
//! in the store's look, and sets the cookies it decided on. The account pages live in
//! `storefront/account.rs` (+ `storefront/account_*.rs` if it grows): that file already
//! exposes `router()`, `TEMPLATES` and `STRINGS`, which are wired in; fill them.
//!
//! **Handlers** return `Result<Response, WebError>` (alias [`PageResult`]); a domain
//! `crate::Error` converts with `?` (404 → not-found page, 422/409 → error page showing
//! the message, 5xx → generic page with the request id, cause logged). For forms, catch
//! `Error::Validation(fields)` yourself and re-render the form with the messages.
//!
//! **Extractors.**
//! - [`Page`]: the viewer (`page.viewer.principal: Option<Principal>`, `name`, `email`,
//!   `cart_token`, `flash`) plus the request path. Use it on every GET.
//! - [`SignedIn`]: like `Page` but a guest is redirected (303) to
//!   `/signin?next=<this path>`; gives `SignedIn(page, principal)`.
//! - [`CsrfForm<T>`](csrf::CsrfForm): the form body (urlencoded) deserialised into `T`
//!   after checking its `csrf` field; a missing/wrong token is a 403 page and the handler
//!   never runs. Put it LAST in the handler's arguments (it reads the body). Every form
//!   that POSTs must contain `<input type="hidden" name="csrf" value="{{ csrf_token }}">`
//!   (or `{{ m.csrf() }}` after `{% import "macros.html" as m %}`).
//!
//! **Rendering.** `render(&state, &page, "storefront/account/orders.html", ctx)` where
//! `ctx` is any `Serialize` struct (a `serde_json::json!` object works). Every template
//! also gets: `store` {name, logo_url, footer_text, currency}, `viewer` {signed_in, name,
//! email, role}, `csrf_token`, `flash` [{kind, message}], `cart_count`, `menu`
//! [{name, slug}], `request_path`. Undefined variables are errors (strict mode): a typo
//! fails a test instead of rendering blank.
//!
//! **Templates** extend `layout.html`: `{% extends "layout.html" %}` and fill blocks
//! `title` (text only; the layout appends " · <store name>"), `description` (meta
//! description), `canonical` (a path, e.g. `/account`; optional), `head` (extra tags),
//! `main` (the page). Set `{% set noindex = true %}` before blocks on private pages
//! (account, cart, checkout) to emit `robots noindex`. Template files go under
//! `templates/storefront/account/` and must be listed in `account::TEMPLATES` with
//! `include_str!` (they are embedded; `storefront.reload_templates = true` reads them
//! from `storefront.templates_dir` instead, for theme work).
//!
//! **Template functions.** `t("key", name=value)` looks up UI text (English table
//! `src/web/i18n/en.toml`; yours is `account::STRINGS`, a TOML text, keys under
//! `account.` please); a missing key is an error. `money(minor, currency)` formats a
//! price (`€1,234.50`). `asset("app.css")` gives the hashed URL. `canonical(path)` gives
//! the absolute URL. In Rust: `state.web.i18n.t("key")`, `i18n::money(..)`.
//!
//! **POST/redirect/GET and flash.** After a successful POST, `return Ok(redirect(&state,
//! "/account", Flash::success(state.web.i18n.t("account.saved"))))` (303 + flash cookie,
//! shown once by the next page), or [`redirect_plain`] without a message.
//!
//! **Signing in and out** reuse the users service's real sessions:
//! `session::sign_in(&state, &page.viewer, &token_pair, next.as_deref()).await?` after
//! `users::flows::login` (or `verify_mfa`) gave a `TokenPair`: it sets the HttpOnly
//! session cookie, merges the guest cart into the account and 303s to `next` (only local
//! paths; anything else goes to `/`). `session::sign_out(&state, &page.viewer).await?`
//! ends the session in the users service and clears the cookie. Use `?next=` on
//! `/signin` and `/register` (checkout links to `/signin?next=/checkout` and
//! `/register?next=/checkout`); [`session::safe_next`] checks one.
//!
//! Pages under `/api` never pass here: the API keeps problem+json.

pub mod assets;
pub mod cache;
pub mod csrf;
pub mod i18n;
pub mod render;
pub mod session;
pub mod storefront;

pub use csrf::CsrfForm;
pub use render::{WebError, render};
pub use session::Viewer;

use crate::app::AppState;
use crate::auth::Principal;
use crate::config::Config;
use crate::error::Result;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// What a page handler returns.
pub type PageResult = std::result::Result<Response, WebError>;

/// The page layer's shared parts, built once at start (in `AppState::web`).
pub struct WebState {
    pub cookie_key: session::CookieKey,
    pub i18n: Arc<i18n::I18n>,
    pub assets: Arc<assets::Assets>,
    pub templates: render::Templates,
    /// The category tree, menu and related products, kept between writes.
    pub reads: cache::ReadModels,
    /// Stands for the per-visitor values (CSRF token, cart count, …) in pages kept for
    /// every viewer (see `storefront/product_cache.rs`); random per process, so no content
    /// can contain it.
    pub csrf_marker: String,
}

impl WebState {
    pub fn new(config: &Config) -> Result<Arc<WebState>> {
        let i18n = Arc::new(i18n::I18n::english()?);
        let assets = Arc::new(assets::Assets::new(&config.storefront));
        let templates = render::Templates::new(
            &config.storefront,
            config.public_url(),
            i18n.clone(),
            assets.clone(),
        )?;
        Ok(Arc::new(WebState {
            cookie_key: session::CookieKey::load_or_create(&config.keys_dir())?,
            i18n,
            assets,
            templates,
            reads: cache::ReadModels::default(),
            csrf_marker: format!("csrf{}", uuid::Uuid::now_v7().simple()),
        }))
    }
}

/// A message shown once on the next page (after a redirect).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// `success`, `info` or `error`.
    pub kind: String,
    pub message: String,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Flash {
        Flash {
            kind: "success".into(),
            message: message.into(),
        }
    }
    pub fn info(message: impl Into<String>) -> Flash {
        Flash {
            kind: "info".into(),
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Flash {
        Flash {
            kind: "error".into(),
            message: message.into(),
        }
    }
}

/// The request as a page sees it: who is browsing, and where.
#[derive(Debug, Clone)]
pub struct Page {
    pub viewer: Viewer,
    /// The path (no query), e.g. `/p/blue-mug`.
    pub path: String,
    /// The path with its query string, for `?next=` links.
    pub path_and_query: String,
}

impl Page {
    pub fn principal(&self) -> Option<&Principal> {
        self.viewer.principal.as_ref()
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Page, WebError> {
        let viewer = match parts.extensions.get::<Viewer>() {
            Some(v) => v.clone(),
            None => Viewer::from_headers(state, &parts.headers),
        };
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        Ok(Page {
            viewer,
            path: uri.path().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| uri.path().to_owned()),
        })
    }
}

/// A signed-in page: guests are sent to `/signin?next=<here>` (303).
#[derive(Debug, Clone)]
pub struct SignedIn(pub Page, pub Principal);

/// The refusal of [`SignedIn`]: a redirect to sign in, or an error page.
pub enum SignInRedirect {
    To(String),
    Error(WebError),
}

impl IntoResponse for SignInRedirect {
    fn into_response(self) -> Response {
        match self {
            SignInRedirect::To(url) => session::redirect_with_cookies(&url, Vec::new()),
            SignInRedirect::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = SignInRedirect;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<SignedIn, SignInRedirect> {
        let page = Page::from_request_parts(parts, state)
            .await
            .map_err(SignInRedirect::Error)?;
        match page.viewer.principal.clone() {
            Some(p) => Ok(SignedIn(page, p)),
            None => Err(SignInRedirect::To(format!(
                "/signin?next={}",
                urlencode(&page.path_and_query)
            ))),
        }
    }
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// POST/redirect/GET: 303 to `to` with a flash message for the next page.
pub fn redirect(state: &AppState, to: &str, flash: Flash) -> Response {
    session::redirect_with_cookies(to, vec![session::flash_cookie(state, &[flash])])
}

/// Marks a page private to its viewer (cart, checkout, account): no shared caching.
pub fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

/// 303 to `to`, no message.
pub fn redirect_plain(to: &str) -> Response {
    session::redirect_with_cookies(to, Vec::new())
}

/// Every page route, inside the page layer. Mounted by `http::router` with one merge.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .merge(storefront::router())
        .merge(storefront::account::router())
        .layer(CatchPanicLayer::custom(render::panic_page))
        .layer(axum::middleware::from_fn_with_state(state, session::layer));
    Router::new()
        .route("/assets/{file}", get(assets::serve))
        .merge(pages)
}

/// The fallback for paths no route knows: an HTML 404 page in the store's look, except
/// under `/api` and the operations endpoints, which keep problem+json.
pub async fn fallback(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = ["/api/", "/media/", "/health", "/ready", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/api";
    if api {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let viewer = Viewer::from_headers(&state, &headers);
    let e = WebError::not_found();
    let html = render::error_html(&state, &viewer, path, &e);
    (e.status, axum::response::Html(html)).into_response()
}
