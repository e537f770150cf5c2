//! Checkout through the pages: a signed-in shopper pays with the test card that asks for
//! the confirmation step, a guest pays cash on delivery, a double submit of one form
//! makes one order, and refused forms change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::{Market, product_body, vendor};
use crate::helpers::spawn_app_with;
use crate::users;
use crate::web_client::{Browser, assert_clean, input_value};
use crate::web_shop::{signed_in, slug_of, stock};
use reqwest::StatusCode;
use serde_json::json;

/// The catalog tests' market on a store with the test card gateway on, with a stocked
/// product from each vendor; (market, [(title, id)]).
async fn shop() -> (Market, Vec<(&'static str, String)>) {
    shop_with(|_| {}).await
}

async fn shop_with(tweak: impl FnOnce(&mut souk::Config)) -> (Market, Vec<(&'static str, String)>) {
    let app = spawn_app_with(|c| {
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
        c.payments.test_gateway = true;
        tweak(c);
    })
    .await;
    let admin = users::admin(&app).await;
    let (vendor_a, vendor_a_id) = vendor(&app, &admin, "a@example.com", "Alpha Goods").await;
    let (vendor_b, vendor_b_id) = vendor(&app, &admin, "b@example.com", "Beta Wares").await;
    let (_, customer, _) = users::user(&app, "c@example.com").await;
    let mut m = Market {
        app,
        admin,
        vendor_a,
        vendor_a_id,
        vendor_b,
        vendor_b_id,
        customer,
        home: String::new(),
        kitchen: String::new(),
        knives: String::new(),
        garden: String::new(),
    };
    m.knives = m.category("Knives", None).await;
    let mut made = Vec::new();
    for (title, token, price) in [
        ("Chef Knife", m.vendor_a.clone(), 4900),
        ("Beta Bluetooth Speaker Mini", m.vendor_b.clone(), 5900),
    ] {
        let mut b = product_body(title, &m.knives, &format!("SKU-{price}"), price);
        b["status"] = json!("active");
        let p = m.product(&token, b).await;
        let id = p["id"].as_str().unwrap().to_string();
        stock(&m, &token, &id, 10).await;
        made.push((title, id));
    }
    (m, made)
}

fn id_of(made: &[(&'static str, String)], title: &str) -> String {
    made.iter().find(|(t, _)| *t == title).unwrap().1.clone()
}

async fn add(b: &mut Browser, m: &Market, made: &[(&'static str, String)], title: &str, qty: &str) {
    let id = id_of(made, title);
    let slug = slug_of(m, &id).await;
    let page = b.get(&format!("/p/{slug}")).await;
    let variant = input_value(&page.body, "variant_id").unwrap();
    let got = b
        .submit(
            &format!("/p/{slug}"),
            "/cart/add",
            &[
                ("product_id", &id),
                ("variant_id", &variant),
                ("quantity", qty),
            ],
        )
        .await;
    got.assert_page("cart after add");
}

fn orders_of(m: &Market) -> usize {
    let rtx = m.app.state.store.read().unwrap();
    let t = rtx.open_table(souk::store::tables::ORDER_ID_TO_ORDER);
    match t {
        Ok(t) => redb::ReadableTableMetadata::len(&t).unwrap() as usize,
        Err(_) => 0,
    }
}

const ADDRESS: &[(&str, &str)] = &[
    ("name", "Ada Buyer"),
    ("line1", "1 Main St"),
    ("line2", ""),
    ("city", "Berlin"),
    ("postal_code", "10115"),
    ("country", "DE"),
];

#[tokio::test]
async fn a_signed_in_shopper_pays_by_test_card_with_the_confirmation_step() {
    let (m, made) = shop().await;
    let mut b = signed_in(&m).await;
    add(&mut b, &m, &made, "Chef Knife", "1").await;
    add(&mut b, &m, &made, "Beta Bluetooth Speaker Mini", "1").await;
    let page = b.get("/checkout").await;
    page.assert_page("checkout");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.body.contains("test gateway"),
        "the test gateway says so"
    );
    assert!(
        page.body.contains("Alpha Goods: ") && page.body.contains("Beta Wares: "),
        "shipping per vendor"
    );
    assert!(
        !page.body.contains("name=\"email\""),
        "a member needs no email field"
    );
    let key = input_value(&page.body, "idempotency_key").unwrap();
    let csrf = page.csrf();
    let before = orders_of(&m);

    // Refused first: a bad country and no card number. Nothing is ordered.
    let mut bad: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "card"),
    ];
    bad.extend(ADDRESS.iter().map(|(k, v)| {
        if *k == "country" {
            (*k, "Germany")
        } else {
            (*k, *v)
        }
    }));
    bad.extend([
        ("card_number", "4000000000003220"),
        ("card_exp_month", "12"),
        ("card_exp_year", "2031"),
        ("card_cvc", "123"),
    ]);
    let r = b.post("/checkout", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&r.body, "refused checkout");
    assert!(r.body.contains("two-letter"), "the field's message");
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert_eq!(orders_of(&m), before);
    let fresh = input_value(&r.body, "idempotency_key").unwrap();
    assert_ne!(fresh, key, "a refused form gets a new key");

    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &fresh),
        ("payment_method", "card"),
    ];
    form.extend(ADDRESS.iter().copied());
    form.extend([
        ("card_number", "4000 0000 0000 3220"),
        ("card_exp_month", "12"),
        ("card_exp_year", "2031"),
        ("card_cvc", "123"),
    ]);
    let r = b.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let confirm = r.location().unwrap();
    assert!(confirm.starts_with("/checkout/confirm/"), "{confirm}");
    // The same form again (a double click): the same answer, still one order.
    let again = b.post("/checkout", &form).await;
    assert_eq!(again.location().unwrap(), confirm);
    assert_eq!(orders_of(&m), before + 1);

    let page = b.get(&confirm).await;
    page.assert_page("confirm step");
    assert!(
        page.body.contains("123456"),
        "the test gateway names its code"
    );
    let payment_id = input_value(&page.body, "payment_id").unwrap();
    let action = confirm[..confirm.find('?').unwrap()].to_string();
    // Without the token the step is refused and the payment still waits.
    let r = b
        .post(&action, &[("payment_id", &payment_id), ("code", "123456")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let done = b
        .submit(
            &confirm,
            &action,
            &[("payment_id", &payment_id), ("code", "123456")],
        )
        .await;
    done.assert_page("confirmation");
    assert!(
        done.body.contains("Thank you for your order"),
        "{}",
        done.body
    );
    assert!(done.body.contains("Test gateway: no real money moved"));
    assert!(done.body.contains("Chef Knife") && done.body.contains("Beta Bluetooth Speaker Mini"));
    let c = b.get("/cart").await;
    assert!(
        c.body.contains("Your cart is empty"),
        "checkout empties the cart"
    );
    // Another shopper cannot see this order's pages.
    let mut stranger = Browser::new(&m.app);
    let order_path = action.replace("/checkout/confirm/", "/checkout/done/");
    assert_eq!(
        stranger.get(&order_path).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_guest_checks_out_with_an_email_and_cash_on_delivery() {
    let (m, made) = shop().await;
    let mut b = Browser::new(&m.app);
    // An empty cart has nothing to check out.
    let r = b.get("/checkout").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location().unwrap(), "/cart");
    add(&mut b, &m, &made, "Chef Knife", "2").await;
    let page = b.get("/checkout").await;
    page.assert_page("guest checkout");
    assert!(page.body.contains("href=\"/signin?next=/checkout\""));
    assert!(page.body.contains("href=\"/register?next=/checkout\""));
    assert!(
        !page.body.contains("value=\"wallet\""),
        "a wallet needs an account"
    );
    let key = input_value(&page.body, "idempotency_key").unwrap();
    let csrf = page.csrf();
    let before = orders_of(&m);
    // A bad email is refused and nothing is ordered.
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "cod"),
        ("email", "nope"),
    ];
    form.extend(ADDRESS.iter().copied());
    let r = b.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(orders_of(&m), before);
    let key = input_value(&r.body, "idempotency_key").unwrap();
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "cod"),
        ("email", "guest@example.com"),
    ];
    form.extend(ADDRESS.iter().copied());
    let r = b.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.cookies.contains_key("souk_order"));
    let done = b.open(&r.location().unwrap()).await;
    done.assert_page("guest confirmation");
    assert!(
        done.body.contains("Please have €"),
        "cash on delivery note: {}",
        done.body
    );
    assert!(done.body.contains("Chef Knife"));
    assert_eq!(orders_of(&m), before + 1);
}

#[tokio::test]
async fn a_declined_card_or_a_short_wallet_says_the_payment_did_not_go_through() {
    let (m, made) = shop().await;
    let mut guest = Browser::new(&m.app);
    add(&mut guest, &m, &made, "Chef Knife", "1").await;
    let page = guest.get("/checkout").await;
    let key = input_value(&page.body, "idempotency_key").unwrap();
    let csrf = page.csrf();
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "card"),
        ("email", "guest@example.com"),
        ("card_number", "4000000000000002"),
        ("card_exp_month", "12"),
        ("card_exp_year", "2031"),
        ("card_cvc", "123"),
    ];
    form.extend(ADDRESS.iter().copied());
    let r = guest.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let done = guest.open(&r.location().unwrap()).await;
    done.assert_page("declined");
    assert!(
        done.body.contains("Your payment did not go through"),
        "{}",
        done.body
    );

    // A member whose wallet is empty: the order waits, the page says why.
    let mut member = signed_in(&m).await;
    add(&mut member, &m, &made, "Chef Knife", "1").await;
    let page = member.get("/checkout").await;
    assert!(page.body.contains("value=\"wallet\""));
    let key = input_value(&page.body, "idempotency_key").unwrap();
    let csrf = page.csrf();
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "wallet"),
    ];
    form.extend(ADDRESS.iter().copied());
    let r = member.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let done = member.open(&r.location().unwrap()).await;
    done.assert_page("wallet too low");
    assert!(
        done.body.contains("Your payment did not go through"),
        "{}",
        done.body
    );
}

#[tokio::test]
async fn the_hosted_gateway_sends_the_buyer_to_the_providers_page() {
    let (m, made) = shop_with(|c| {
        c.payments.hosted_url = "https://pay.example.test/checkout".into();
        c.payments.hosted_secret = Some(souk::config::Secret::new(
            "a-hosted-gateway-secret-of-32-chars!",
        ));
    })
    .await;
    let mut b = Browser::new(&m.app);
    add(&mut b, &m, &made, "Chef Knife", "1").await;
    let page = b.get("/checkout").await;
    assert!(
        page.body.contains("value=\"hosted\""),
        "offered when configured"
    );
    let key = input_value(&page.body, "idempotency_key").unwrap();
    let csrf = page.csrf();
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("idempotency_key", &key),
        ("payment_method", "hosted"),
        ("email", "guest@example.com"),
    ];
    form.extend(ADDRESS.iter().copied());
    let r = b.post("/checkout", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location().unwrap();
    assert!(to.starts_with("https://pay.example.test/checkout"), "{to}");
    assert_eq!(orders_of(&m), 1);
}

#[tokio::test]
async fn a_guest_registers_during_checkout_and_continues_with_the_same_cart() {
    let (m, made) = shop().await;
    let mut b = Browser::new(&m.app);
    add(&mut b, &m, &made, "Chef Knife", "2").await;
    let page = b.get("/checkout").await;
    assert!(page.body.contains("href=\"/register?next=/checkout\""));
    let got = b
        .submit(
            "/register?next=/checkout",
            "/register",
            &[
                ("name", "Vera Visitor"),
                ("email", "vera@example.com"),
                ("password", "a long enough passphrase"),
                ("password_confirm", "a long enough passphrase"),
                ("next", "/checkout"),
            ],
        )
        .await;
    got.assert_page("checkout after registering");
    assert!(got.body.contains("<h1>Checkout</h1>"), "{}", got.body);
    assert!(b.cookies.contains_key("souk_session"));
    assert!(
        !got.body.contains("name=\"email\""),
        "now a member: no guest email field"
    );
    assert!(got.body.contains("Chef Knife"), "the guest cart came along");
    assert!(got.body.contains("value=\"wallet\""));
}
