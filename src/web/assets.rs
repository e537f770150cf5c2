//! Static assets: hand-written CSS and JS embedded in the binary, plus the theme's colours
//! made from `[storefront]`, each served under a content-hashed name
//! (`/assets/app.3f2a9c1b0d.css`) with a year of immutable caching. Templates get the
//! hashed URL from `asset("app.css")`; a changed file gets a new name, never a stale copy.

use crate::app::AppState;
use crate::config::StorefrontConfig;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const FILES: &[(&str, &str)] = &[
    ("app.css", include_str!("../../assets/app.css")),
    ("app.js", include_str!("../../assets/app.js")),
];

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Asset {
    body: Bytes,
    content_type: &'static str,
}

pub struct Assets {
    /// Hashed file name → content.
    files: HashMap<String, Asset>,
    /// Logical name (`app.css`) → URL (`/assets/app.<hash>.css`).
    urls: HashMap<String, String>,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The theme stylesheet: the configured colours as CSS custom properties.
pub fn theme_css(cfg: &StorefrontConfig) -> String {
    format!(
        ":root{{--primary:{};--accent:{}}}\n",
        cfg.primary_color, cfg.accent_color
    )
}

impl Assets {
    pub fn new(cfg: &StorefrontConfig) -> Assets {
        let theme = Bytes::from(theme_css(cfg));
        let mut a = Assets {
            files: HashMap::new(),
            urls: HashMap::new(),
        };
        let files = FILES
            .iter()
            .map(|(n, b)| (*n, Bytes::from_static(b.as_bytes())))
            .chain([("theme.css", theme)]);
        for (name, body) in files {
            let hash = hex::encode(&Sha256::digest(&body)[..5]);
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{hash}.{ext}");
            a.urls.insert(name.to_string(), format!("/assets/{hashed}"));
            a.files.insert(
                hashed,
                Asset {
                    body,
                    content_type: content_type(name),
                },
            );
        }
        a
    }

    /// The hashed URL of a logical asset name.
    pub fn url(&self, name: &str) -> Option<String> {
        self.urls.get(name).cloned()
    }
}

/// `GET /assets/{file}`: only exact hashed names exist; anything else is 404.
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(a) = state.web.assets.files.get(&file) else {
        return super::render::WebError::not_found().into_response();
    };
    let mut res = (StatusCode::OK, a.body.clone()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    res
}
