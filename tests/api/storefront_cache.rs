//! Product pages are rendered once per store generation and served to every viewer with
//! their own parts filled in (`src/web/storefront/product_cache.rs`): what one visitor is
//! shown (cart count, account menu, CSRF token, email, flash message) never reaches
//! another, and a price or stock change shows on the very next request, signed in or not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::Market;
use crate::users;
use crate::web_client::{Browser, Got, input_value};
use crate::web_shop::{signed_in, slug_of, stock};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The cart count in the page's header.
fn cart_count(body: &str) -> &str {
    let start = body.find("<span class=\"count\"").expect("a cart count");
    let text = &body[start..];
    let open = text.find('>').unwrap() + 1;
    &text[open..text.find("</span>").unwrap()]
}

/// The product's price as the page shows it.
fn price(body: &str) -> &str {
    let start = body.find("data-variant-price>").expect("a price") + "data-variant-price>".len();
    &body[start..start + body[start..].find("</span>").unwrap()]
}

fn signed_in_menu(got: &Got) -> bool {
    got.body.contains("action=\"/signout\"")
}

/// A browser signed in through the sign-in form as a new customer `email`.
async fn new_member(m: &Market, email: &str) -> Browser {
    users::user(&m.app, email).await;
    let mut b = Browser::new(&m.app);
    let got = b
        .submit(
            "/signin",
            "/signin",
            &[
                ("email", email),
                ("password", users::PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    got.assert_page("home after sign-in");
    b
}

async fn add_to_cart(b: &mut Browser, page: &str, id: &str, quantity: &str) {
    let body = b.get(page).await.body;
    let variant = input_value(&body, "variant_id").expect("an add-to-cart form");
    let got = b
        .submit(
            page,
            "/cart/add",
            &[
                ("product_id", id),
                ("variant_id", variant.as_str()),
                ("quantity", quantity),
            ],
        )
        .await;
    got.assert_page("cart after add");
}

#[tokio::test]
async fn a_kept_product_page_shows_each_viewer_their_own_cart_menu_token_and_email() {
    let m = Market::new().await;
    let p = m.active_product("Paring Knife", "PK-1", 1900).await;
    let id = p["id"].as_str().unwrap().to_string();
    stock(&m, &m.vendor_a, &id, 9).await;
    let sold_out = m.active_product("Santoku Knife", "SK-1", 5500).await;
    let buy = format!("/p/{}", slug_of(&m, &id).await);
    let notify = format!("/p/{}", slug_of(&m, sold_out["id"].as_str().unwrap()).await);
    let marker = m.app.state.web.csrf_marker.clone();

    // Ann is signed in with two in her cart; Carol is a guest with one; Dave is signed in
    // with none; Bob is a guest with none.
    let mut ann = signed_in(&m).await;
    add_to_cart(&mut ann, &buy, &id, "2").await;
    let mut carol = Browser::new(&m.app);
    add_to_cart(&mut carol, &buy, &id, "1").await;
    let mut dave = new_member(&m, "d@example.com").await;
    let mut bob = Browser::new(&m.app);

    let who = [
        ("ann", "2", true, "c@example.com"),
        ("carol", "1", false, ""),
        ("dave", "0", true, "d@example.com"),
        ("bob", "0", false, ""),
    ];
    // Twice over, in both orders, so every page but the first of each shape is served
    // from one kept rendering.
    for round in 0..2 {
        let mut tokens = Vec::new();
        let mut browsers: Vec<&mut Browser> = vec![&mut ann, &mut carol, &mut dave, &mut bob];
        if round == 1 {
            browsers.reverse();
        }
        let mut order: Vec<_> = who.iter().collect();
        if round == 1 {
            order.reverse();
        }
        for (b, (name, count, member, email)) in browsers.into_iter().zip(order) {
            for page in [&buy, &notify] {
                let got = b.get(page).await;
                got.assert_page(&format!("{name}: {page}"));
                assert!(!got.body.contains(&marker), "{name}: a marker left");
                assert_eq!(cart_count(&got.body), *count, "{name}: cart count");
                assert!(
                    got.body
                        .contains(&format!("aria-label=\"{count} items in your cart\"")),
                    "{name}: the count's label"
                );
                assert_eq!(signed_in_menu(&got), *member, "{name}: account menu");
                assert_eq!(
                    got.body.contains("href=\"/register\""),
                    !*member,
                    "{name}: register link"
                );
                for (other, _, _, their) in &who {
                    if !their.is_empty() && their != email {
                        assert!(!got.body.contains(their), "{name} shown {other}'s email");
                    }
                }
                tokens.push((name, got.csrf()));
            }
            // The sold-out page's "back in stock" form is prefilled with their own email.
            let got = b.get(&notify).await;
            assert_eq!(
                input_value(&got.body, "email").as_deref(),
                Some(*email),
                "{name}: notify email"
            );
        }
        // Each viewer has their own token (the same on both of their pages).
        for (i, (a, ta)) in tokens.iter().enumerate() {
            for (b, tb) in &tokens[i + 1..] {
                assert_eq!(a == b, ta == tb, "{a} and {b}: tokens");
            }
        }
    }

    // A viewer's token works for them alone: Bob's token does not add to Ann's cart.
    let bobs = bob.get(&buy).await.csrf();
    let variant = input_value(&ann.get(&buy).await.body, "variant_id").unwrap();
    let refused = ann
        .post(
            "/cart/add",
            &[
                ("csrf", bobs.as_str()),
                ("product_id", id.as_str()),
                ("variant_id", variant.as_str()),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(cart_count(&ann.get(&buy).await.body), "2", "nothing added");

    // A flash message is shown once, to its viewer only.
    let got = bob
        .submit(
            &notify,
            &format!("{notify}/notify"),
            &[("email", "bob@example.com")],
        )
        .await;
    got.assert_page("product page after the sign-up");
    assert!(got.body.contains("We will email you"), "the flash message");
    assert!(!got.body.contains(&marker));
    for (name, b) in [("dave", &mut dave), ("carol", &mut carol)] {
        let got = b.get(&notify).await;
        assert!(
            !got.body.contains("We will email you"),
            "{name} shown Bob's flash"
        );
    }
    let again = bob.get(&notify).await;
    assert!(!again.body.contains("We will email you"), "shown once");
    assert!(!again.body.contains("bob@example.com"));
}

#[tokio::test]
async fn price_and_stock_changes_show_on_the_very_next_kept_page_signed_in_or_not() {
    let m = Market::new().await;
    let p = m.active_product("Paring Knife", "PK-1", 1900).await;
    let id = p["id"].as_str().unwrap().to_string();
    let page = format!("/p/{}", slug_of(&m, &id).await);
    let mut member = signed_in(&m).await;
    let mut guest = Browser::new(&m.app);

    for b in [&mut member, &mut guest] {
        for _ in 0..2 {
            let got = b.get(&page).await;
            got.assert_page("product page");
            assert_eq!(price(&got.body), "€19.00");
            assert!(!got.body.contains("action=\"/cart/add\""), "sold out");
            assert!(got.body.contains("/notify\""), "the sign-up form");
        }
    }

    // Stock arrives: buyable on the next page for both.
    stock(&m, &m.vendor_a, &id, 3).await;
    for b in [&mut member, &mut guest] {
        let got = b.get(&page).await;
        got.assert_page("product page after stock arrived");
        assert!(got.body.contains("action=\"/cart/add\""), "buyable now");
        assert!(!got.body.contains("/notify\""));
    }

    // A new price shows on the next page for both.
    let variant = p["variants"][0]["id"].clone();
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"variants": [{"id": variant, "sku": "PK-1", "price": {"amount": 2450, "currency": "EUR"}}]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for b in [&mut member, &mut guest] {
        let got = b.get(&page).await;
        assert_eq!(price(&got.body), "€24.50");
        assert!(!got.body.contains("€19.00"));
    }

    // A refused change (another vendor's token) changes nothing on the page.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_b,
            Some(json!({"variants": [{"id": variant, "sku": "PK-1", "price": {"amount": 100, "currency": "EUR"}}]})),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    for b in [&mut member, &mut guest] {
        assert_eq!(price(&b.get(&page).await.body), "€24.50");
    }
}

#[tokio::test]
async fn a_draft_is_shown_to_its_vendor_alone_never_kept_for_others() {
    let m = Market::new().await;
    let mut body = crate::catalog::product_body("Secret Knife", &m.knives, "SE-1", 900);
    body["status"] = json!("draft");
    let p = m.product(&m.vendor_a, body).await;
    let page = format!("/p/{}", p["id"].as_str().unwrap());
    let mut guest = Browser::new(&m.app);
    let mut member = signed_in(&m).await;
    let mut vendor = Browser::new(&m.app);
    vendor
        .submit(
            "/signin",
            "/signin",
            &[("email", "a@example.com"), ("password", users::PASSWORD)],
        )
        .await
        .assert_page("home after the vendor signed in");
    for _ in 0..2 {
        let got = vendor.get(&page).await;
        got.assert_page("the vendor's own draft");
        assert!(got.body.contains("Secret Knife"));
        assert!(got.body.contains("action=\"/signout\""));
        for b in [&mut guest, &mut member] {
            let got = b.get(&page).await;
            assert_eq!(got.status, StatusCode::NOT_FOUND);
            assert!(!got.body.contains("Secret Knife"));
        }
    }
}
