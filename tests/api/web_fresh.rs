//! Pages keep the category tree, the menu and related products between requests (see
//! `src/web/cache.rs`); a write made through the API must still show on the very next
//! page, with no waiting: renamed categories in the menu and the breadcrumbs, a new
//! product among the related ones, a stock change on a related card, a removed product
//! gone from them. A guest with no cart gets a product page rendered once for all such
//! guests, with their own CSRF token filled in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::{Market, product_body};
use crate::web_client::Browser;
use crate::web_shop::{slug_of, stock};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The `<li class="card">…</li>` of the related product titled `title`, if shown.
fn card<'a>(body: &'a str, title: &str) -> Option<&'a str> {
    let related = &body[body.find("id=\"h-related\"")?..];
    related
        .split("<li class=\"card\">")
        .skip(1)
        .map(|c| &c[..c.find("</li>").unwrap_or(c.len())])
        .find(|c| c.contains(&format!("<span class=\"title\">{title}</span>")))
}

/// The top menu's part of a page.
fn menu(body: &str) -> &str {
    let start = body.find("<nav class=\"menu\"").expect("a menu");
    &body[start..start + body[start..].find("</nav>").unwrap()]
}

/// The breadcrumbs' part of a product page.
fn crumbs(body: &str) -> &str {
    let start = body.find("class=\"crumbs\"").expect("breadcrumbs");
    &body[start..start + body[start..].find("</nav>").unwrap()]
}

async fn rename(m: &Market, id: &str, name: &str) {
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/categories/{id}"),
            &m.admin,
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_renamed_category_shows_in_the_menu_and_breadcrumbs_on_the_next_page() {
    let m = Market::new().await;
    let knife = m.active_product("Paring Knife", "PK-1", 1500).await;
    let page = format!("/p/{}", slug_of(&m, knife["id"].as_str().unwrap()).await);
    let mut b = Browser::new(&m.app);

    // Twice, so the second page is served from what the first one computed.
    for _ in 0..2 {
        let got = b.get(&page).await;
        got.assert_page("product page");
        assert!(
            menu(&got.body).contains(">Garden</a>"),
            "{}",
            menu(&got.body)
        );
        assert!(crumbs(&got.body).contains(">Kitchen</a>"));
    }
    let home = b.get("/").await;
    home.assert_page("home");
    assert!(menu(&home.body).contains(">Garden</a>"));

    rename(&m, &m.garden, "Outdoors").await;
    rename(&m, &m.kitchen, "Cookware").await;

    let got = b.get(&page).await;
    got.assert_page("product page after the renames");
    let (nav, path) = (menu(&got.body), crumbs(&got.body));
    assert!(
        nav.contains(">Outdoors</a>") && !nav.contains(">Garden</a>"),
        "{nav}"
    );
    assert!(
        path.contains(">Cookware</a>") && !path.contains(">Kitchen</a>"),
        "{path}"
    );
    assert!(
        path.contains(">Knives</a>"),
        "the rest of the path stays: {path}"
    );
    let home = b.get("/").await;
    home.assert_page("home after the renames");
    assert!(menu(&home.body).contains(">Outdoors</a>"));
    assert!(!home.body.contains(">Garden</a>"));

    // A refused rename (a customer may not) changes nothing on the pages.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/categories/{}", m.garden),
            &m.customer,
            Some(json!({ "name": "Yard" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let got = b.get(&page).await;
    assert!(menu(&got.body).contains(">Outdoors</a>"));
    assert!(!got.body.contains("Yard"));
}

#[tokio::test]
async fn related_products_follow_new_products_stock_and_removals_at_once() {
    let m = Market::new().await;
    let main = m.active_product("Chef Knife", "CK-1", 4500).await;
    let other = m.active_product("Bread Knife", "BK-1", 2500).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let page = format!("/p/{}", slug_of(&m, main["id"].as_str().unwrap()).await);
    let mut b = Browser::new(&m.app);

    for _ in 0..2 {
        let got = b.get(&page).await;
        got.assert_page("product page");
        let c = card(&got.body, "Bread Knife").expect("the other knife is related");
        assert!(c.contains("stock out"), "no stock yet: {c}");
        assert!(card(&got.body, "Chef Knife").is_none(), "never itself");
        assert!(card(&got.body, "Santoku Knife").is_none());
    }

    // Stock arrives: the card drops its "out of stock" on the next page.
    stock(&m, &m.vendor_a, &other_id, 5).await;
    let got = b.get(&page).await;
    let c = card(&got.body, "Bread Knife").expect("still related");
    assert!(!c.contains("stock out"), "in stock now: {c}");

    // A new product in the category is related at once.
    let mut body = product_body("Santoku Knife", &m.knives, "SK-1", 5500);
    body["status"] = json!("active");
    let santoku = m.product(&m.vendor_a, body).await;
    let got = b.get(&page).await;
    got.assert_page("product page after a new product");
    assert!(card(&got.body, "Santoku Knife").is_some(), "the new knife");

    // A deleted one is gone from the next page.
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/products/{}", santoku["id"].as_str().unwrap()),
            &m.vendor_a,
            None,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let got = b.get(&page).await;
    assert!(card(&got.body, "Santoku Knife").is_none(), "deleted");
    assert!(card(&got.body, "Bread Knife").is_some());

    // A product in another category never shows here.
    let mut body = product_body("Hose", &m.garden, "HO-1", 900);
    body["status"] = json!("active");
    m.product(&m.vendor_a, body).await;
    let got = b.get(&page).await;
    assert!(card(&got.body, "Hose").is_none());

    // The page's own product: sold out (the sign-up form) until stock arrives, then the
    // add-to-cart form on the very next page.
    assert!(!got.body.contains("action=\"/cart/add\""), "sold out");
    assert!(got.body.contains("/notify\""));
    stock(&m, &m.vendor_a, main["id"].as_str().unwrap(), 3).await;
    let got = b.get(&page).await;
    got.assert_page("product page after its own stock arrived");
    assert!(got.body.contains("action=\"/cart/add\""), "buyable now");
}

/// The cart count in the page's header.
fn cart_count(body: &str) -> &str {
    let start = body.find("<span class=\"count\"").expect("a cart count");
    let text = &body[start..];
    let open = text.find('>').unwrap() + 1;
    &text[open..text.find("</span>").unwrap()]
}

#[tokio::test]
async fn a_product_page_kept_for_guests_carries_each_guests_own_token_and_never_their_cart() {
    let m = Market::new().await;
    let p = m.active_product("Paring Knife", "PK-1", 1900).await;
    let id = p["id"].as_str().unwrap().to_string();
    stock(&m, &m.vendor_a, &id, 5).await;
    let page = format!("/p/{}", slug_of(&m, &id).await);
    let marker = &m.app.state.web.csrf_marker;

    let (mut ann, mut bob) = (Browser::new(&m.app), Browser::new(&m.app));
    let a = ann.get(&page).await;
    let b = bob.get(&page).await;
    for got in [&a, &b] {
        got.assert_page("guest product page");
        assert!(
            !got.body.contains(marker.as_str()),
            "the marker never leaves"
        );
        assert_eq!(cart_count(&got.body), "0");
    }
    assert_ne!(a.csrf(), b.csrf(), "each guest has their own token");
    // The same page but for the token: one rendering served both.
    assert_eq!(a.body.replace(&a.csrf(), ""), b.body.replace(&b.csrf(), ""));

    // Bob's token does not work for Ann; her own does.
    let variant = crate::web_client::input_value(&a.body, "variant_id").unwrap();
    let form = [
        ("product_id", id.as_str()),
        ("variant_id", variant.as_str()),
        ("quantity", "2"),
    ];
    let mut with_bobs = vec![("csrf", b.csrf())];
    with_bobs.extend(form.iter().map(|(k, v)| (*k, v.to_string())));
    let with_bobs: Vec<(&str, &str)> = with_bobs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = ann.post("/cart/add", &with_bobs).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let added = ann.submit(&page, "/cart/add", &form).await;
    added.assert_page("cart after add");

    // Ann has a cart now: her pages are her own (the count shows), Bob's still say 0.
    let a = ann.get(&page).await;
    assert_eq!(cart_count(&a.body), "2");
    let b = bob.get(&page).await;
    assert_eq!(cart_count(&b.body), "0");
    assert!(!b.body.contains(marker.as_str()));
}
