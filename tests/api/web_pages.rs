//! The storefront foundation through HTTP: the layout on every page, HTML error pages for
//! page paths (the API keeps problem+json), hashed assets with a year of caching, CSRF
//! refusals that change nothing, robots.txt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::spawn_app_with;
use crate::web_client::{Browser, assert_clean};
use reqwest::StatusCode;

fn asset_urls(body: &str) -> Vec<String> {
    body.split("\"/assets/")
        .skip(1)
        .map(|s| format!("/assets/{}", &s[..s.find('"').unwrap()]))
        .collect()
}

#[tokio::test]
async fn the_home_page_renders_with_branding_and_hashed_assets() {
    let app = spawn_app_with(|c| {
        c.storefront.name = "Corner Shop".into();
        c.storefront.footer_text = "Open every day".into();
        c.storefront.primary_color = "#123456".into();
    })
    .await;
    let mut b = Browser::new(&app);
    let home = b.get("/").await;
    home.assert_page("home");
    assert!(home.content_type().starts_with("text/html"));
    assert!(home.body.contains("<title>Home · Corner Shop</title>"));
    assert!(home.body.contains("Open every day"));
    assert!(home.body.contains("href=\"/signin?next="));
    assert!(home.body.contains("<link rel=\"canonical\" href=\""));
    assert!(b.cookies.contains_key("souk_v"), "a visitor cookie is set");
    let urls = asset_urls(&home.body);
    assert_eq!(urls.len(), 3, "{urls:?}");
    let mut theme_seen = false;
    for u in &urls {
        // app.<10 hex>.css
        let name = u.trim_start_matches("/assets/");
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert_eq!(parts[1].len(), 10);
        assert!(parts[1].bytes().all(|c| c.is_ascii_hexdigit()));
        let r = app.get(u).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let body = r.text().await.unwrap();
        if name.starts_with("theme.") {
            theme_seen = true;
            assert!(body.contains("#123456"), "the theme carries the colour");
        }
    }
    assert!(theme_seen);
    // A name that is not exactly a served hash does not exist.
    let r = app.get("/assets/app.0000000000.css").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get("/assets/app.css").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn page_paths_get_an_html_404_and_the_api_keeps_problem_json() {
    let app = spawn_app_with(|_| {}).await;
    let mut b = Browser::new(&app);
    let r = b.get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.content_type().starts_with("text/html"), "{:?}", r.headers);
    assert_clean(&r.body, "404");
    assert!(r.body.contains("Page not found"));
    assert!(
        r.body.contains("<header class=\"top\">"),
        "in the store's look"
    );
    let r = app.get("/api/v1/no-such-thing").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app.get("/c/no-such-category").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn robots_txt_points_at_the_sitemap() {
    let app = spawn_app_with(|_| {}).await;
    let r = app.get("/robots.txt").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("Disallow: /checkout"));
    assert!(body.contains("Sitemap: https://"));
    assert!(body.contains("/sitemap.xml"));
}

#[tokio::test]
async fn search_pages_say_search_is_rebuilding_while_the_index_is_built() {
    let app = spawn_app_with(|_| {}).await;
    let mut b = Browser::new(&app);
    // No indexer has run: search answers 503, the pages explain it in the store's look.
    for path in ["/search?q=knife", "/search"] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(r.content_type().starts_with("text/html"));
        assert!(r.headers.get("retry-after").is_some());
        assert_clean(&r.body, path);
        assert!(r.body.contains("Search is being rebuilt"), "{}", r.body);
    }
    // The home page still serves (its trending shelf waits for the index).
    b.get("/").await.assert_page("home while rebuilding");
}

#[tokio::test]
async fn theme_work_reads_templates_from_disk_and_a_broken_one_is_a_plain_500() {
    let themes = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    copy_dir(&src, themes.path());
    let dir = themes.path().to_path_buf();
    let app = spawn_app_with(move |c| {
        c.storefront.reload_templates = true;
        c.storefront.templates_dir = dir;
    })
    .await;
    let mut b = Browser::new(&app);
    b.get("/").await.assert_page("home from disk");
    // An edit shows on the next request, no restart.
    let home = themes.path().join("storefront/home.html");
    let text = std::fs::read_to_string(&home).unwrap();
    std::fs::write(
        &home,
        text.replace("{% block main %}", "{% block main %}<p>Autumn sale</p>"),
    )
    .unwrap();
    let r = b.get("/").await;
    r.assert_page("edited home");
    assert!(r.body.contains("<p>Autumn sale</p>"));
    // A template typo is a 500 page that shows no template internals.
    std::fs::write(
        &home,
        "{% extends \"layout.html\" %}{% block main %}{{ nope( }}{% endblock %}",
    )
    .unwrap();
    let r = b.get("/").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.content_type().starts_with("text/html"));
    assert!(r.body.contains("Something went wrong"), "{}", r.body);
    assert!(!r.body.contains("nope"), "no template source leaks");
    assert!(!r.body.contains("syntax error"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
