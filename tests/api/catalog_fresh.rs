//! Product lists are kept as answered until the next committed write (see
//! `CatalogState`): whatever a write changes shows in the very next list, and a refused
//! query is never kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::{Market, product_body};
use crate::users::{json, problem};
use crate::web_shop::stock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json as body};

async fn titles(m: &Market, query: &str) -> Vec<String> {
    let v: Value = json(m.app.get(&format!("/api/v1/products?{query}")).await).await;
    let mut t: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn a_kept_list_shows_every_write_on_the_next_request() {
    let m = Market::new().await;
    let knives = format!("category={}", m.knives);
    let in_stock = format!("{knives}&in_stock=true");
    let chef = m.active_product("Chef Knife", "CK-1", 4500).await;
    let chef_id = chef["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(titles(&m, &knives).await, ["Chef Knife"]);
        assert!(titles(&m, &in_stock).await.is_empty());
    }

    // A new product, then stock: each shows at once.
    let mut b = product_body("Bread Knife", &m.knives, "BK-1", 2500);
    b["status"] = body!("active");
    let bread = m.product(&m.vendor_a, b).await;
    assert_eq!(titles(&m, &knives).await, ["Bread Knife", "Chef Knife"]);
    stock(&m, &m.vendor_a, &chef_id, 2).await;
    assert_eq!(titles(&m, &in_stock).await, ["Chef Knife"]);

    // A rename and a removal, likewise.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{chef_id}"),
            &m.vendor_a,
            Some(body!({"title": "Chef's Knife"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let bread_id = bread["id"].as_str().unwrap();
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/products/{bread_id}"),
            &m.vendor_a,
            None,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(titles(&m, &knives).await, ["Chef's Knife"]);

    // A refused query stays refused, and is told why each time.
    for _ in 0..2 {
        let r = m.app.get("/api/v1/products?category=no-such-thing").await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    }
}

#[tokio::test]
async fn a_kept_product_follows_writes_and_never_serves_what_its_caller_may_not_see() {
    let m = Market::new().await;
    let p = m.active_product("Chef Knife", "CK-1", 4500).await;
    let id = p["id"].as_str().unwrap().to_string();
    let slug = p["slug"].as_str().unwrap().to_string();
    let get = |key: String, etag: Option<String>| {
        let mut r = m
            .app
            .client
            .get(format!("{}/api/v1/products/{key}", m.app.base_url));
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send()
    };
    let first = get(id.clone(), None).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(json(first).await["title"], "Chef Knife");
    let again = get(slug.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NOT_MODIFIED,
        "by slug, same version"
    );

    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(body!({"title": "Chef's Knife"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let changed = get(id.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "the old ETag no longer matches"
    );
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(json(changed).await["title"], "Chef's Knife");

    // A draft: the public gets 404 every time, its vendor sees it, the other vendor not.
    let draft = m
        .product(
            &m.vendor_a,
            product_body("Santoku", &m.knives, "SK-1", 5000),
        )
        .await;
    let draft_id = draft["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let r = get(draft_id.clone(), None).await.unwrap();
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
    }
    let own = m
        .get(&format!("/api/v1/products/{draft_id}"), &m.vendor_a)
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = m
        .get(&format!("/api/v1/products/{draft_id}"), &m.vendor_b)
        .await;
    problem(other, StatusCode::NOT_FOUND, "not_found").await;

    // Archived: still readable (orders link to it), and says so on the next request.
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            None,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let archived = get(id, None).await.unwrap();
    assert_eq!(archived.status(), StatusCode::OK);
    assert_eq!(json(archived).await["status"], "archived");
}
