//! A tiny browser for page tests: keeps cookies (what reqwest's default features do not),
//! never follows redirects on its own so tests see each 303 and its Set-Cookie, and reads
//! CSRF tokens and links out of the HTML it gets.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use crate::helpers::{TestApp, client_trusting};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

/// One page as the browser got it.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Got {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The value of the first `name="csrf"` hidden input.
    pub fn csrf(&self) -> String {
        input_value(&self.body, "csrf").expect("page has a CSRF token")
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Asserts a 200 HTML page that leaks no template trouble.
    pub fn assert_page(&self, what: &str) {
        assert_eq!(self.status, StatusCode::OK, "{what}: {}", self.body);
        assert_clean(&self.body, what);
    }
}

/// No template error or undefined value shows on a page.
pub fn assert_clean(body: &str, what: &str) {
    assert!(
        body.starts_with("<!doctype html>"),
        "{what}: not a page: {body}"
    );
    for bad in ["undefined", "Error", "error:", "{{", "{%", "None", "null"] {
        let visible = strip_tags(body);
        assert!(
            !visible.contains(bad),
            "{what}: `{bad}` leaked into {visible}"
        );
    }
}

/// Text outside tags, scripts and JSON-LD (what a person reads).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tag_end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        rest = &rest[tag_end..];
        if tag.starts_with("<script") {
            let end = rest.find("</script>").map(|j| j + 9).unwrap_or(rest.len());
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// The `value` of the first input named `name`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.split("value=\"").nth(1)?;
    Some(unescape(&v[..v.find('"')?]))
}

pub fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base_url.clone(),
            client: client_trusting(&app.cert_pem, |b| {
                b.redirect(reqwest::redirect::Policy::none())
            }),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, r: reqwest::Response) -> Got {
        for v in r.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
        Got {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Got {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    /// GET, following redirects (keeping cookies on the way).
    pub async fn open(&mut self, path: &str) -> Got {
        let mut got = self.get(path).await;
        for _ in 0..5 {
            match got.location() {
                Some(to) if got.status.is_redirection() => got = self.get(&to).await,
                _ => break,
            }
        }
        got
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Got {
        let body = serde_urlencoded::to_string(form).unwrap();
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    /// POSTs with the CSRF token of the page at `from`, then follows the redirect.
    pub async fn submit(&mut self, from: &str, path: &str, form: &[(&str, &str)]) -> Got {
        let csrf = self.get(from).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        let got = self.post(path, &all).await;
        match got.location() {
            Some(to) if got.status == StatusCode::SEE_OTHER => self.open(&to).await,
            _ => got,
        }
    }
}
