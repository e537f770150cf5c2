//! Who is browsing: the signed cookies of the pages (visitor id, session, guest cart,
//! flash messages) and the layer that reads them once per page request into a [`Viewer`].
//! The session cookie names a real users-service session, so logout, revocation and the
//! session list behave the same for pages and the API. Nothing here renders HTML.

use super::Flash;
use crate::app::AppState;
use crate::auth::{Principal, SessionId};
use crate::error::{Error, Result};
use crate::services::users::flows::TokenPair;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use std::path::Path;

pub const SESSION_COOKIE: &str = "souk_session";
pub const VISITOR_COOKIE: &str = "souk_v";
pub const CART_COOKIE: &str = "souk_cart";
pub const FLASH_COOKIE: &str = "souk_flash";
/// A guest's latest order: `<order id>.<access token>`, so they can confirm and see it.
pub const ORDER_COOKIE: &str = "souk_order";

const VISITOR_MAX_AGE: i64 = 365 * 24 * 3600;
const CART_MAX_AGE: i64 = 30 * 24 * 3600;

/// The key that signs page cookies and CSRF tokens (`keys/web-cookie.key`, made once).
pub struct CookieKey(hmac::Key);

impl CookieKey {
    pub fn load_or_create(keys_dir: &Path) -> Result<CookieKey> {
        let path = keys_dir.join("web-cookie.key");
        let raw = if path.exists() {
            crate::auth::keys::read_private_file(&path)?
        } else {
            crate::auth::keys::ensure_private_dir(keys_dir)?;
            let fresh: [u8; 32] = rand::random();
            crate::auth::keys::write_private_file(&path, &fresh)?;
            fresh.to_vec()
        };
        if raw.len() < 32 {
            return Err(Error::internal(format!(
                "{} is shorter than 32 bytes; delete it to have a new one made",
                path.display()
            )));
        }
        Ok(CookieKey(hmac::Key::new(hmac::HMAC_SHA256, &raw)))
    }

    /// A URL-safe signature of `purpose` and `value` (128 bits are plenty for a cookie).
    pub fn sign(&self, purpose: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(&ctx.sign().as_ref()[..16])
    }

    pub fn verify(&self, purpose: &str, value: &str, sig: &str) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.sign(purpose, value);
        want.as_bytes().ct_eq(sig.as_bytes()).into()
    }

    fn signed(&self, purpose: &str, value: &str) -> String {
        format!("{value}.{}", self.sign(purpose, value))
    }

    fn unsign<'a>(&self, purpose: &str, cookie: &'a str) -> Option<&'a str> {
        let (value, sig) = cookie.rsplit_once('.')?;
        self.verify(purpose, value, sig).then_some(value)
    }
}

/// The browsing person as the page layer sees them, resolved once per request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The signed-in user's principal (an active session), or `None` for a guest.
    pub principal: Option<Principal>,
    /// The signed-in user's display name and email.
    pub name: String,
    pub email: String,
    /// The random visitor id (cookie `souk_v`): binds CSRF tokens, groups telemetry.
    pub visitor: String,
    /// A guest's cart token (cookie `souk_cart`), if they have a cart.
    pub cart_token: Option<String>,
    /// Flash messages carried over a redirect (shown once).
    pub flash: Vec<Flash>,
    /// A guest's latest order and its access token (cookie `souk_order`).
    pub order_cookie: Option<String>,
    /// Cookies to set on the way out (new visitor id, stale session removed, flash shown).
    set_cookies: Vec<String>,
}

/// One `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when the store speaks TLS.
pub fn cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.config.tls_enabled() {
        c.push_str("; Secure");
    }
    c
}

/// A `Set-Cookie` value that deletes `name`.
pub fn clear_cookie(state: &AppState, name: &str) -> String {
    cookie(state, name, "", Some(0))
}

/// The value of cookie `name` in the request headers.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn valid_visitor(v: &str) -> bool {
    v.len() == 22
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the page cookies into a [`Viewer`]. A session cookie whose session has ended
/// (logout elsewhere, revocation, expiry) makes a guest and is deleted on the way out.
pub fn resolve(state: &AppState, headers: &HeaderMap) -> Viewer {
    let web = &state.web;
    let mut set_cookies = Vec::new();
    let visitor = match read_cookie(headers, VISITOR_COOKIE).filter(|v| valid_visitor(v)) {
        Some(v) => v.to_string(),
        None => {
            let v = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
            set_cookies.push(cookie(state, VISITOR_COOKIE, &v, Some(VISITOR_MAX_AGE)));
            v
        }
    };
    let mut viewer = Viewer {
        principal: None,
        name: String::new(),
        email: String::new(),
        visitor,
        cart_token: read_cookie(headers, CART_COOKIE)
            .filter(|t| crate::services::orders::cart::valid_guest_token(t))
            .map(String::from),
        flash: Vec::new(),
        order_cookie: read_cookie(headers, ORDER_COOKIE)
            .filter(|v| {
                v.len() <= 128
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
            .map(String::from),
        set_cookies,
    };
    if let Some(raw) = read_cookie(headers, SESSION_COOKIE) {
        let principal = web
            .cookie_key
            .unsign(SESSION_COOKIE, raw)
            .and_then(|sid| sid.parse::<uuid::Uuid>().ok())
            .and_then(|u| {
                crate::auth::principal::principal_for_session(
                    state,
                    SessionId(u),
                    state.clock.now(),
                )
                .ok()
            })
            .and_then(|p| {
                crate::services::users::current_user(state, &p)
                    .ok()
                    .map(|u| (p, u))
            });
        match principal {
            Some((p, u)) => {
                viewer.name = u.name.clone();
                viewer.email = u.email.to_string();
                viewer.principal = Some(p);
            }
            None => viewer.set_cookies.push(clear_cookie(state, SESSION_COOKIE)),
        }
    }
    if let Some(raw) = read_cookie(headers, FLASH_COOKIE) {
        viewer.flash = web
            .cookie_key
            .unsign(FLASH_COOKIE, raw)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
    }
    viewer
}

/// The page layer: resolves the [`Viewer`] into the request's extensions, then sets the
/// cookies it decided on. A flash message is deleted once a page (not a redirect) showed it.
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let viewer = resolve(&state, req.headers());
    let had_flash = read_cookie(req.headers(), FLASH_COOKIE).is_some();
    let mut cookies = viewer.set_cookies.clone();
    let path = req.uri().path().to_owned();
    let is_get = req.method() == axum::http::Method::GET;
    let referrer = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .map(|r| r.chars().take(512).collect::<String>());
    req.extensions_mut().insert(viewer.clone());
    let mut res = next.run(req).await;
    if is_get && res.status() == StatusCode::OK && is_html(&res) {
        state
            .telemetry
            .record(crate::log::event::Event::PageViewed {
                path: path.clone(),
                user_id: viewer.principal.as_ref().map(|p| p.user_id.to_string()),
                session_id: Some(viewer.visitor.clone()),
                referrer,
                timestamp: state.clock.now(),
            });
    }
    if res.extensions().get::<super::render::ErrorPage>().is_some() {
        res = super::render::error_response(&state, &viewer, &path, res);
    }
    if had_flash && !res.status().is_redirection() {
        cookies.push(clear_cookie(&state, FLASH_COOKIE));
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

fn is_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
}

impl Viewer {
    /// A viewer for a request that did not pass through [`layer`] (the 404 fallback).
    pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Viewer {
        let mut v = resolve(state, headers);
        v.flash.clear();
        v
    }

    /// The guest cart token, or a new one with the `Set-Cookie` that keeps it.
    pub fn cart_token_or_new(&self, state: &AppState) -> (String, Option<String>) {
        match &self.cart_token {
            Some(t) => (t.clone(), None),
            None => {
                let t = crate::services::orders::cart::new_guest_token();
                let c = cookie(state, CART_COOKIE, &t, Some(CART_MAX_AGE));
                (t, Some(c))
            }
        }
    }
}

/// The `Set-Cookie` that carries flash messages over one redirect.
pub fn flash_cookie(state: &AppState, flash: &[Flash]) -> String {
    let json = serde_json::to_vec(flash).unwrap_or_default();
    let value = state
        .web
        .cookie_key
        .signed(FLASH_COOKIE, &URL_SAFE_NO_PAD.encode(json));
    cookie(state, FLASH_COOKIE, &value, Some(300))
}

/// A local path to go to after signing in (`?next=`): anything else becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Signs the browser in on a session the users service opened (`flows::login`,
/// `flows::verify_mfa`, or a fresh registration's login): sets the session cookie, moves
/// the guest cart into the account, and redirects (303) to `next` with a flash message.
pub async fn sign_in(
    state: &AppState,
    viewer: &Viewer,
    tokens: &TokenPair,
    next: Option<&str>,
) -> Result<Response> {
    let claims = state
        .auth
        .verify_access(&tokens.access_token, state.clock.now())?;
    let sid = claims.sid.to_string();
    let value = state.web.cookie_key.signed(SESSION_COOKIE, &sid);
    let max_age = state.config.auth.refresh_token_ttl_secs as i64;
    let mut cookies = vec![cookie(state, SESSION_COOKIE, &value, Some(max_age))];
    if let Some(t) = &viewer.cart_token {
        crate::services::orders::cart::merge(state, t.clone(), tokens.user.id).await?;
        cookies.push(clear_cookie(state, CART_COOKIE));
    }
    let flash = [Flash::success(state.web.i18n.t("flash.signed_in"))];
    cookies.push(flash_cookie(state, &flash));
    Ok(redirect_with_cookies(&safe_next(next), cookies))
}

/// Ends the browser's session in the users service (its tokens die with it), deletes the
/// cookie and redirects home with a flash message. A guest is just redirected.
pub async fn sign_out(state: &AppState, viewer: &Viewer) -> Result<Response> {
    if let Some(p) = &viewer.principal {
        match crate::services::users::flows::logout(state, p).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let flash = [Flash::info(state.web.i18n.t("flash.signed_out"))];
    Ok(redirect_with_cookies(
        "/",
        vec![
            clear_cookie(state, SESSION_COOKIE),
            flash_cookie(state, &flash),
        ],
    ))
}

/// 303 See Other to `to` with the given `Set-Cookie` values.
pub fn redirect_with_cookies(to: &str, cookies: Vec<String>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/checkout")), "/checkout");
        assert_eq!(safe_next(Some("/p/x?y=1")), "/p/x?y=1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "", "x"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn signed_values_round_trip_and_refuse_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let k = CookieKey::load_or_create(dir.path()).unwrap();
        let s = k.signed("a", "value");
        assert_eq!(k.unsign("a", &s), Some("value"));
        assert_eq!(k.unsign("b", &s), None);
        assert_eq!(k.unsign("a", &s.replace("value", "valuf")), None);
        let again = CookieKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.unsign("a", &s), Some("value"));
    }
}
