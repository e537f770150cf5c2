//! The storefront's pages over a small indexed catalog: every browsing page as a guest and
//! signed in, SEO data, the product page's forms (add to cart, back-in-stock sign-up), the
//! guest cart across requests by cookie, CSRF refusals, the page-weight budget, the
//! sitemap, and telemetry of page and product views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::Market;
use crate::search::Shop;
use crate::users::{self, json};
use crate::web_client::{Browser, Got, assert_clean, input_value};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Gives a product `n` units in a new warehouse of its vendor.
pub async fn stock(m: &Market, vendor_token: &str, product_id: &str, n: i64) {
    let p = json(
        m.get(&format!("/api/v1/products/{product_id}"), vendor_token)
            .await,
    )
    .await;
    let variant = p["variants"][0]["id"].as_str().unwrap().to_string();
    let code = format!("W{}", &product_id[product_id.len() - 6..]);
    let r = m
        .send(
            Method::POST,
            "/api/v1/vendor/warehouses",
            vendor_token,
            Some(json!({"name": "Depot", "code": code})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let w = json(r).await["id"].as_str().unwrap().to_string();
    let inv = json(
        m.get(&format!("/api/v1/inventory/{product_id}"), vendor_token)
            .await,
    )
    .await;
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/inventory/{product_id}"),
            vendor_token,
            Some(json!({"version": inv["version"], "levels": [{"variant_id": variant, "warehouse_id": w, "on_hand": n}]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

pub fn id_of(shop: &Shop, title: &str) -> String {
    shop.made
        .iter()
        .find(|p| p.title == title)
        .unwrap()
        .id
        .clone()
}

pub async fn slug_of(m: &Market, id: &str) -> String {
    let p = json(m.app.get(&format!("/api/v1/products/{id}")).await).await;
    p["slug"].as_str().unwrap().to_string()
}

/// A browser signed in through the sign-in form as the market's customer.
pub async fn signed_in(m: &Market) -> Browser {
    let mut b = Browser::new(&m.app);
    let got = b
        .submit(
            "/signin",
            "/signin",
            &[
                ("email", "c@example.com"),
                ("password", users::PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    got.assert_page("home after sign-in");
    assert!(b.cookies.contains_key("souk_session"), "{:?}", b.cookies);
    b
}

fn cart_line_ids(body: &str) -> Vec<String> {
    body.split("action=\"/cart/items/")
        .skip(1)
        .map(|s| s[..s.find(['"', '/']).unwrap()].to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test]
async fn every_browsing_page_renders_for_guests_and_signed_in_shoppers() {
    let shop = Shop::new().await;
    let knife = id_of(&shop, "Chef Knife");
    stock(&shop.m, &shop.m.vendor_a, &knife, 10).await;
    let knife_slug = slug_of(&shop.m, &knife).await;
    let vendor = shop.m.vendor_a_id.clone();
    let guest = Browser::new(&shop.m.app);
    let member = signed_in(&shop.m).await;
    for (who, mut b) in [("guest", guest), ("member", member)] {
        let home = b.get("/").await;
        home.assert_page(&format!("{who}: home"));
        assert!(home.body.contains("Chef Knife"), "{who}: featured products");
        assert!(home.body.contains("href=\"/c/"), "{who}: top categories");
        if who == "member" {
            assert!(home.body.contains("Sign out") && home.body.contains("href=\"/account\""));
        } else {
            assert!(home.body.contains("href=\"/register\""));
        }

        let s = b.get("/search?q=speaker").await;
        s.assert_page(&format!("{who}: search"));
        assert!(s.body.contains("Bose Portable Speaker"));
        assert!(s.body.contains("Beta Bluetooth Speaker Mini"));
        assert!(!s.body.contains("Chef Knife</span>"), "only matches");
        // Facets link to the same search with the filter added.
        assert!(s.body.contains("brand=JBL"), "brand facet");
        let jbl = b.get("/search?q=speaker&brand=JBL").await;
        jbl.assert_page(&format!("{who}: filtered"));
        assert!(jbl.body.contains("Beta Bluetooth Speaker Mini"));
        assert!(!jbl.body.contains("Bose Portable Speaker</span>"));
        assert!(
            jbl.body.contains("aria-pressed=\"true\""),
            "the filter shows as on"
        );

        let typo = b.get("/search?q=speakr").await;
        typo.assert_page(&format!("{who}: typo"));
        assert!(typo.body.contains("Did you mean"), "{who}: did you mean");
        assert!(typo.body.contains("/search?q=speaker"));

        let none = b.get("/search?q=zzqqxxyy").await;
        none.assert_page(&format!("{who}: no results"));
        assert!(none.body.contains("No products match"));

        let cat = b.get("/c/audio?sort=price_asc").await;
        cat.assert_page(&format!("{who}: category"));
        let jbl_at = cat.body.find("JBL Flip Bluetooth Speaker").unwrap();
        let bose_at = cat.body.find("Bose Portable Speaker").unwrap();
        assert!(jbl_at < bose_at, "sorted by price");
        assert!(cat.body.contains("<option value=\"price_asc\" selected>"));
        assert!(
            cat.body.contains("aria-current=\"page\">Audio"),
            "breadcrumbs"
        );

        let p = b.get(&format!("/p/{knife_slug}")).await;
        p.assert_page(&format!("{who}: product"));
        assert!(p.body.contains("<h1>Chef Knife</h1>"));
        assert!(p.body.contains("€49.00"));
        assert!(p.body.contains("action=\"/cart/add\""));
        assert!(
            p.body.contains(&format!("href=\"/v/{vendor}\"")),
            "vendor card"
        );
        assert!(
            p.body.contains("Bread Knife"),
            "related products from the category"
        );

        let v = b.get(&format!("/v/{vendor}")).await;
        v.assert_page(&format!("{who}: vendor"));
        assert!(v.body.contains("<h1>Alpha Goods</h1>"));
        assert!(v.body.contains("Chef Knife"));
        assert!(
            !v.body.contains("Beta Bluetooth Speaker Mini</span>"),
            "only theirs"
        );

        let c = b.get("/cart").await;
        c.assert_page(&format!("{who}: cart"));
        assert!(c.body.contains("Your cart is empty"));
        assert_eq!(c.headers["cache-control"], "no-store");
    }
    // Unknown ids and suspended worlds are the HTML 404.
    let mut g = Browser::new(&shop.m.app);
    for path in [
        "/p/no-such-product",
        "/v/not-an-id",
        "/v/0190b2a0-0000-7000-8000-000000000000",
    ] {
        let r = g.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_clean(&r.body, path);
    }
    // A bad search parameter is a 400 page, not a problem+json.
    let r = g.get("/search?q=x&sort=sideways").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.content_type().starts_with("text/html"));
    assert!(r.body.contains("unknown sort"));
}

#[tokio::test]
async fn the_product_page_carries_seo_data_and_the_back_in_stock_signup_is_recorded() {
    let shop = Shop::new().await;
    let hose = id_of(&shop, "Garden Hose");
    let slug = slug_of(&shop.m, &hose).await;
    let mut b = Browser::new(&shop.m.app);
    let p = b.get(&format!("/p/{slug}")).await;
    p.assert_page("product");
    assert!(p.body.contains("<title>Garden Hose · Souk</title>"));
    assert!(p.body.contains(&format!(
        "<link rel=\"canonical\" href=\"{}/p/{slug}\">",
        shop.m.app.state.config.public_url()
    )));
    assert!(
        p.body
            .contains("<meta property=\"og:type\" content=\"product\">")
    );
    assert!(p.body.contains(
        "<meta name=\"description\" content=\"Garden Hose: a green product by GreenCo.\">"
    ));
    let ld_start = p
        .body
        .find("<script type=\"application/ld+json\">")
        .unwrap()
        + 35;
    let ld_end = ld_start + p.body[ld_start..].find("</script>").unwrap();
    let ld: Value = serde_json::from_str(&p.body[ld_start..ld_end]).unwrap();
    assert_eq!(ld["@type"], "Product");
    assert_eq!(ld["name"], "Garden Hose");
    assert_eq!(ld["brand"]["name"], "GreenCo");
    assert_eq!(ld["offers"]["price"], "19.00");
    assert_eq!(ld["offers"]["priceCurrency"], "EUR");
    assert_eq!(
        ld["offers"]["availability"],
        "https://schema.org/OutOfStock"
    );
    // Sold out: no add-to-cart, a sign-up form instead.
    assert!(!p.body.contains("action=\"/cart/add\""));
    assert!(p.body.contains(&format!("action=\"/p/{slug}/notify\"")));
    let pid: souk::services::catalog::model::ProductId = hose.parse().unwrap();
    let signups =
        || souk::services::catalog::back_in_stock::sign_ups(&shop.m.app.state, pid).unwrap();

    // A bad email: the form again (422) with the message; nothing recorded.
    let csrf = p.csrf();
    let r = b
        .post(
            &format!("/p/{slug}/notify"),
            &[("csrf", &csrf), ("email", "not-an-email")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&r.body, "notify refused");
    assert!(r.body.contains("valid email"));
    assert_eq!(input_value(&r.body, "email").unwrap(), "not-an-email");
    assert!(signups().is_empty());
    // Without the CSRF token: 403 and nothing recorded.
    let r = b
        .post(
            &format!("/p/{slug}/notify"),
            &[("email", "ada@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("nothing was changed"));
    assert!(signups().is_empty());
    // Signing up, twice: one record, a thank-you on the product page.
    for _ in 0..2 {
        let r = b
            .submit(
                &format!("/p/{slug}"),
                &format!("/p/{slug}/notify"),
                &[("email", "Ada@Example.com")],
            )
            .await;
        r.assert_page("after sign-up");
        assert!(r.body.contains("We will email you"));
    }
    let s = signups();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].email.to_lowercase(), "ada@example.com");
    // Once in stock, the page sells it and a sign-up is refused politely.
    stock(&shop.m, &shop.m.vendor_a, &hose, 3).await;
    let p = b.get(&format!("/p/{slug}")).await;
    assert!(p.body.contains("action=\"/cart/add\""));
    assert!(p.body.contains("Only a few left"));
    let r = b
        .post(
            &format!("/p/{slug}/notify"),
            &[("csrf", &p.csrf()), ("email", "bob@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(signups().len(), 1);
}

#[tokio::test]
async fn a_guest_cart_lives_in_a_cookie_and_forms_refuse_a_missing_csrf_token() {
    let shop = Shop::new().await;
    let knife = id_of(&shop, "Chef Knife");
    let speaker = id_of(&shop, "Beta Bluetooth Speaker Mini");
    stock(&shop.m, &shop.m.vendor_a, &knife, 10).await;
    stock(&shop.m, &shop.m.vendor_b, &speaker, 10).await;
    let knife_slug = slug_of(&shop.m, &knife).await;
    let speaker_slug = slug_of(&shop.m, &speaker).await;
    let mut b = Browser::new(&shop.m.app);
    let page = b.get(&format!("/p/{knife_slug}")).await;
    let variant = input_value(&page.body, "variant_id").unwrap();
    // A forged form (no token, then a wrong one): 403 page, no cart made.
    for token in [None, Some("forged")] {
        let mut form = vec![
            ("product_id", knife.as_str()),
            ("variant_id", variant.as_str()),
            ("quantity", "2"),
        ];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let r = b.post("/cart/add", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.content_type().starts_with("text/html"));
        assert_clean(&r.body, "csrf refusal");
        assert!(!b.cookies.contains_key("souk_cart"));
    }
    // A token from another visitor is refused too.
    let mut other = Browser::new(&shop.m.app);
    let their = other.get(&format!("/p/{knife_slug}")).await.csrf();
    let r = b
        .post(
            "/cart/add",
            &[
                ("csrf", &their),
                ("product_id", &knife),
                ("variant_id", &variant),
                ("quantity", "2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let got = b
        .submit(
            &format!("/p/{knife_slug}"),
            "/cart/add",
            &[
                ("product_id", &knife),
                ("variant_id", &variant),
                ("quantity", "2"),
            ],
        )
        .await;
    got.assert_page("cart after add");
    assert!(
        b.cookies.contains_key("souk_cart"),
        "the guest cart token is kept in a cookie"
    );
    assert!(got.body.contains("Added to your cart"));
    assert!(got.body.contains("Chef Knife"));
    assert!(got.body.contains("€98.00"));
    let speaker_variant = input_value(
        &b.get(&format!("/p/{speaker_slug}")).await.body,
        "variant_id",
    )
    .unwrap();
    b.submit(
        &format!("/p/{speaker_slug}"),
        "/cart/add",
        &[("product_id", &speaker), ("variant_id", &speaker_variant)],
    )
    .await;
    // A new request with only the cookies sees both vendors' groups and the count.
    let c = b.get("/cart").await;
    c.assert_page("cart");
    assert!(c.body.contains("From Alpha Goods") && c.body.contains("From Beta Wares"));
    assert!(
        c.body
            .contains("<span class=\"count\" aria-label=\"3 items in your cart\">3</span>")
    );
    let lines = cart_line_ids(&c.body);
    assert!(lines.len() >= 2, "{lines:?}");
    // A quantity out of range is refused with a message and changes nothing.
    let r = b
        .submit(
            "/cart",
            &format!("/cart/items/{}", lines[0]),
            &[("quantity", "1000")],
        )
        .await;
    r.assert_page("refused quantity");
    assert!(r.body.contains("between 1 and 99"));
    assert!(
        r.body
            .contains("<span class=\"count\" aria-label=\"3 items in your cart\">3</span>")
    );
    let r = b
        .submit(
            "/cart",
            &format!("/cart/items/{}", lines[0]),
            &[("quantity", "5")],
        )
        .await;
    assert!(r.body.contains("Your cart was updated"));
    assert!(r.body.contains("aria-label=\"6 items in your cart\""));
    let remove = cart_line_ids(&r.body).into_iter().last().unwrap();
    let r = b
        .submit("/cart", &format!("/cart/items/{remove}/remove"), &[])
        .await;
    assert!(r.body.contains("was removed"));
    // Another browser has its own (empty) cart.
    let mut stranger = Browser::new(&shop.m.app);
    assert!(
        stranger
            .get("/cart")
            .await
            .body
            .contains("Your cart is empty")
    );
    // Signing in moves the guest cart into the account.
    let csrf = b.get("/signin").await.csrf();
    let r = b
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "c@example.com"),
                ("password", users::PASSWORD),
                ("next", "/cart"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location().unwrap(), "/cart");
    assert!(
        !b.cookies.contains_key("souk_cart"),
        "the guest cart cookie goes"
    );
    let c = b.get("/cart").await;
    c.assert_page("member cart");
    assert!(c.body.contains("Chef Knife"));
}

#[tokio::test]
async fn a_product_page_with_its_css_and_js_stays_under_60_kb() {
    let shop = Shop::new().await;
    let knife = id_of(&shop, "Chef Knife");
    stock(&shop.m, &shop.m.vendor_a, &knife, 10).await;
    let slug = slug_of(&shop.m, &knife).await;
    let mut b = Browser::new(&shop.m.app);
    let p = b.get(&format!("/p/{slug}")).await;
    p.assert_page("product");
    let mut total = p.body.len();
    let assets: Vec<String> = p
        .body
        .split("\"/assets/")
        .skip(1)
        .map(|s| format!("/assets/{}", &s[..s.find('"').unwrap()]))
        .collect();
    assert_eq!(assets.len(), 3, "theme css, app css, app js");
    for a in &assets {
        let r = shop
            .m
            .app
            .client
            .get(shop.m.app.url(a))
            .header("accept-encoding", "identity")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        total += r.bytes().await.unwrap().len();
    }
    assert!(
        total < 60 * 1024,
        "product page weighs {total} bytes uncompressed"
    );
}

#[tokio::test]
async fn the_sitemap_lists_products_categories_and_vendors() {
    let shop = Shop::new().await;
    let base = shop.m.app.state.config.public_url();
    let r = shop.m.app.get("/sitemap.xml").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = r.text().await.unwrap();
    assert!(xml.starts_with("<?xml"));
    for p in shop.active() {
        let slug = slug_of(&shop.m, &p.id).await;
        assert!(
            xml.contains(&format!("<loc>{base}/p/{slug}</loc>")),
            "{slug}"
        );
    }
    let hidden = id_of(&shop, "Hidden iPhone Case");
    let hidden_slug = slug_of_any(&shop, &hidden).await;
    assert!(
        !xml.contains(&format!("/p/{hidden_slug}<")),
        "drafts are not listed"
    );
    assert!(xml.contains(&format!("<loc>{base}/c/audio</loc>")));
    assert!(xml.contains(&format!("<loc>{base}/v/{}</loc>", shop.m.vendor_a_id)));
    assert!(xml.contains(&format!("<loc>{base}/v/{}</loc>", shop.m.vendor_b_id)));
}

async fn slug_of_any(shop: &Shop, id: &str) -> String {
    let p = json(
        shop.m
            .get(&format!("/api/v1/products/{id}"), &shop.m.vendor_a)
            .await,
    )
    .await;
    p["slug"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn page_and_product_views_reach_the_telemetry_log() {
    let shop = Shop::new().await;
    let knife = id_of(&shop, "Chef Knife");
    let slug = slug_of(&shop.m, &knife).await;
    let mut b = signed_in(&shop.m).await;
    let got: Got = b.get(&format!("/p/{slug}")).await;
    got.assert_page("product");
    b.get("/search?q=knife").await.assert_page("search");
    let app = &shop.m.app;
    app.state.telemetry.flush().unwrap();
    let mut pages = Vec::new();
    let mut products = Vec::new();
    for p in 0..app.state.log.partitions("telemetry") {
        for r in app.state.log.read("telemetry", p, 0, usize::MAX).unwrap() {
            match r.envelope.event {
                souk::log::event::Event::PageViewed {
                    path,
                    user_id,
                    session_id,
                    ..
                } => pages.push((path, user_id, session_id)),
                souk::log::event::Event::ProductViewed {
                    product_id,
                    user_id,
                    ..
                } => products.push((product_id, user_id)),
                _ => {}
            }
        }
    }
    let visitor = b.cookies["souk_v"].clone();
    assert!(
        pages.iter().any(|(p, u, s)| p == &format!("/p/{slug}")
            && u.is_some()
            && s.as_deref() == Some(visitor.as_str())),
        "{pages:?}"
    );
    assert!(pages.iter().any(|(p, _, _)| p == "/search"));
    assert_eq!(
        products
            .iter()
            .filter(|(id, u)| id == &knife && u.is_some())
            .count(),
        1,
        "{products:?}"
    );
}

#[tokio::test]
async fn a_page_session_is_a_users_service_session_that_the_api_can_end() {
    let m = Market::new().await;
    let mut b = signed_in(&m).await;
    let home = b.get("/").await;
    assert!(home.body.contains("Sign out"));
    // The API sees the page's login among the user's sessions and can end it.
    let t = users::login(&m.app, "c@example.com", users::PASSWORD).await;
    let token = t["access_token"].as_str().unwrap();
    let list = json(users::get_auth(&m.app, "/api/v1/auth/sessions", token).await).await;
    let others: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!others.is_empty(), "{list}");
    for id in &others {
        let r = users::send_auth(
            &m.app,
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{id}"),
            token,
            None,
        )
        .await;
        assert!(r.status().is_success(), "{}", r.status());
    }
    // The browser is a guest again, and its stale cookie is deleted.
    let home = b.get("/").await;
    home.assert_page("home after revocation");
    assert!(!home.body.contains("Sign out"));
    assert!(home.body.contains("href=\"/signin?next="));
    assert!(!b.cookies.contains_key("souk_session"));
}

#[tokio::test]
async fn page_cookies_are_http_only_same_site_lax_and_secure_over_tls() {
    let m = Market::new().await;
    let r = m.app.client.get(m.app.url("/")).send().await.unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let v = cookies
        .iter()
        .find(|c| c.starts_with("souk_v="))
        .expect("visitor cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(v.contains(attr), "{v} lacks {attr}");
    }
    let mut b = signed_in(&m).await;
    let _ = b.get("/").await;
    assert!(
        b.cookies["souk_session"].contains('.'),
        "the session cookie is signed"
    );
    // A tampered session cookie is a guest, never an error.
    let forged = b.cookies["souk_session"].replace('.', "x.");
    b.cookies.insert("souk_session".into(), forged);
    let home = b.get("/").await;
    home.assert_page("forged cookie");
    assert!(!home.body.contains("Sign out"));
}
