//! Carts, checkout and the order saga through HTTP with real stores: a two-vendor order to
//! delivery and completion with the ledger, guest cart merge, Idempotency-Key, payment
//! failure and timeout releasing stock, cancel with refund, who may see and move what,
//! illegal transitions, and a checkout storm that never oversells.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::{Market, product_body};
use crate::users::{self, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::auth::{UserId, VendorId};
use souk::money::{Currency, Money};
use souk::services::catalog::inventory;
use souk::services::orders::{self, model::OrderId};
use souk::services::payments::ledger::{self, Account, JournalEntry};

fn eur(a: i64) -> Money {
    Money::new(a, Currency::EUR)
}

/// A market whose vendors each sell one active product with `stock` units, and whose
/// order service is registered with payments.
pub struct Shop {
    pub m: Market,
    /// (product id, variant id) of vendor A's knife (20.00) and vendor B's board (35.00).
    pub knife: (String, String),
    pub board: (String, String),
}

impl Shop {
    pub async fn new(stock: i64) -> Shop {
        let m = Market::new().await;
        Shop::stock_up(m, stock).await
    }

    /// A shop on a server whose config `tweak` changes (after the light argon2
    /// parameters), e.g. to turn the test card gateway on.
    pub async fn with(stock: i64, tweak: impl FnOnce(&mut souk::config::Config)) -> Shop {
        let app = crate::helpers::spawn_app_with(|c| {
            c.auth.argon2_memory_kib = 64;
            c.auth.argon2_iterations = 1;
            tweak(c);
        })
        .await;
        let admin = users::admin(&app).await;
        let (vendor_a, vendor_a_id) =
            crate::catalog::vendor(&app, &admin, "a@example.com", "Alpha Goods").await;
        let (vendor_b, vendor_b_id) =
            crate::catalog::vendor(&app, &admin, "b@example.com", "Beta Wares").await;
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
        m.home = m.category("Home", None).await;
        m.kitchen = m.category("Kitchen", Some(&m.home.clone())).await;
        m.knives = m.category("Knives", Some(&m.kitchen.clone())).await;
        Shop::stock_up(m, stock).await
    }

    async fn stock_up(m: Market, stock: i64) -> Shop {
        orders::saga::ensure_registered(&m.app.state);
        let knife = stocked(&m, &m.vendor_a.clone(), "Knife", "KN-1", 2000, stock).await;
        let board = stocked(&m, &m.vendor_b.clone(), "Board", "BO-1", 3500, stock).await;
        Shop { m, knife, board }
    }

    pub async fn buyer(&self, email: &str, funds: i64) -> (String, String) {
        let (id, token, _) = users::user(&self.m.app, email).await;
        if funds > 0 {
            fund(&self.m.app.state, &id, funds).await;
        }
        (id, token)
    }

    pub async fn add(&self, token: &str, item: &(String, String), qty: i64) -> reqwest::Response {
        self.m
            .send(
                Method::POST,
                "/api/v1/cart/items",
                token,
                Some(json!({"product_id": item.0, "variant_id": item.1, "quantity": qty})),
            )
            .await
    }

    pub async fn checkout(&self, token: &str, key: Option<&str>) -> reqwest::Response {
        let mut b = self
            .m
            .app
            .request(Method::POST, "/api/v1/orders")
            .bearer_auth(token)
            .json(&json!({"shipping_address": address(), "payment_method": "wallet"}));
        if let Some(k) = key {
            b = b.header("Idempotency-Key", k);
        }
        b.send().await.unwrap()
    }

    /// (on hand, reserved) of a product's variant across warehouses.
    pub fn stock(&self, item: &(String, String)) -> (i64, i64) {
        let rtx = self.m.app.state.store.read().unwrap();
        let inv = inventory::inventory(&rtx, item.0.parse().unwrap()).unwrap();
        let v = item.1.parse().unwrap();
        inv.levels
            .iter()
            .filter(|l| l.variant_id == v)
            .fold((0, 0), |(o, r), l| (o + l.on_hand, r + l.reserved))
    }

    pub async fn vendor_status(&self, token: &str, sub: &str, body: Value) -> reqwest::Response {
        self.m
            .send(
                Method::PUT,
                &format!("/api/v1/vendor/orders/{sub}/status"),
                token,
                Some(body),
            )
            .await
    }

    pub fn order_record(&self, id: &str) -> orders::model::Order {
        let rtx = self.m.app.state.store.read().unwrap();
        orders::store::order(&rtx, id.parse::<OrderId>().unwrap())
            .unwrap()
            .unwrap()
    }
}

pub fn address() -> Value {
    json!({"name": "Ada Buyer", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"})
}

/// Puts money in a wallet as a card top-up would (clearing → wallet), in one entry.
pub async fn fund(state: &souk::app::AppState, user: &str, amount: i64) {
    let u: UserId = user.parse().unwrap();
    let now = state.clock.now();
    state
        .store
        .write(move |tx| {
            ledger::post(
                tx,
                JournalEntry {
                    lines: vec![
                        (Account::Clearing("card".into()), eur(-amount)),
                        (Account::Wallet(u), eur(amount)),
                    ],
                    reference: "test".into(),
                    memo: "test funds".into(),
                    at: now,
                },
            )
            .map(|_| ())
        })
        .await
        .unwrap();
}

pub fn balance(state: &souk::app::AppState, account: &Account) -> i64 {
    let rtx = state.store.read().unwrap();
    ledger::balance(&rtx, account, Currency::EUR)
        .unwrap()
        .amount
}

pub fn assert_ledger_ok(state: &souk::app::AppState) {
    let rtx = state.store.read().unwrap();
    let mut report = souk::check::Report::default();
    ledger::verify(&rtx, &mut report).unwrap();
    assert!(report.ok(), "{report}");
}

/// An active product of `vendor` with `stock` units in one new warehouse.
async fn stocked(
    m: &Market,
    vendor: &str,
    title: &str,
    sku: &str,
    price: i64,
    stock: i64,
) -> (String, String) {
    let mut b = product_body(title, &m.knives, sku, price);
    b["status"] = json!("active");
    let p = m.product(vendor, b).await;
    let (pid, vid) = (
        p["id"].as_str().unwrap().to_string(),
        p["variants"][0]["id"].as_str().unwrap().to_string(),
    );
    let r = m
        .send(
            Method::POST,
            "/api/v1/vendor/warehouses",
            vendor,
            Some(json!({"name": "Depot", "code": format!("W-{sku}")})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let w = json(r).await["id"].as_str().unwrap().to_string();
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/inventory/{pid}"),
            vendor,
            Some(json!({"version": 0, "levels": [{"variant_id": vid, "warehouse_id": w, "on_hand": stock}]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    (pid, vid)
}

fn replay_matches(o: &orders::model::Order) {
    let ids: Vec<_> = o.sub_orders.iter().map(|s| s.id).collect();
    let (status, subs) = orders::model::replay(&ids, &o.history).unwrap();
    assert_eq!(status, o.status);
    assert_eq!(
        subs,
        o.sub_orders.iter().map(|s| s.status).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_two_vendor_cart_goes_to_delivery_and_completion() {
    let s = Shop::new(10).await;
    let (_, buyer) = s.buyer("buyer@example.com", 100_000).await;
    assert_eq!(
        s.add(&buyer, &s.knife, 2).await.status(),
        StatusCode::CREATED
    );
    let r = s.add(&buyer, &s.board, 1).await;
    let cart = json(r).await;
    assert_eq!(cart["vendors"].as_array().unwrap().len(), 2);
    assert_eq!(cart["item_count"], 3);
    // Knife part 40.00 + 4.90 shipping; board 35.00 + 4.90; tax is inside (20 % default).
    assert_eq!(cart["subtotal"]["amount"], 7500);
    assert_eq!(cart["shipping"]["amount"], 980);
    assert_eq!(cart["total"]["amount"], 8480);
    assert_eq!(cart["needs_review"], false);

    let r = s.checkout(&buyer, Some("k-1")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["payment"]["status"], "succeeded", "{a}");
    let order = &a["order"];
    assert_eq!(order["status"], "paid");
    assert_eq!(order["total"]["amount"], 8480);
    let oid = order["id"].as_str().unwrap().to_string();
    assert_eq!(s.stock(&s.knife), (10, 2));
    let cart = json(s.m.get("/api/v1/cart", &buyer).await).await;
    assert_eq!(cart["item_count"], 0);

    let subs = order["sub_orders"].as_array().unwrap();
    let sub_of = |vendor: &str| {
        subs.iter().find(|x| x["vendor_id"] == vendor).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (sa, sb) = (sub_of(&s.m.vendor_a_id), sub_of(&s.m.vendor_b_id));
    for (tok, sub) in [(&s.m.vendor_a, &sa), (&s.m.vendor_b, &sb)] {
        let r = s
            .vendor_status(tok, sub, json!({"status": "processing"}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = s
            .vendor_status(tok, sub, json!({"status": "shipped"}))
            .await;
        problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let r = s
            .vendor_status(
                tok,
                sub,
                json!({"status": "shipped", "carrier": "DHL", "tracking_number": "123"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Shipping committed the reservation: the units left on hand.
    assert_eq!(s.stock(&s.knife), (8, 0));
    for (tok, sub) in [(&s.m.vendor_a, &sa), (&s.m.vendor_b, &sb)] {
        let r = s
            .vendor_status(tok, sub, json!({"status": "delivered"}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), &buyer).await).await;
    assert_eq!(o["status"], "delivered");
    let va: VendorId = s.m.vendor_a_id.parse().unwrap();
    let pending = balance(&s.m.app.state, &Account::VendorPending(va));
    // 44.90 less 10 % commission on 40.00.
    assert_eq!(pending, 4490 - 400);
    assert_eq!(balance(&s.m.app.state, &Account::VendorAvailable(va)), 0);

    // Not before the window has passed.
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(s.order_record(&oid).status.as_str(), "delivered");
    s.m.app.state.clock.advance(time::Duration::days(15));
    orders::run_due(&s.m.app.state).await.unwrap();
    // Fifteen days on, the access token has long expired: log in again to look.
    let again = users::login(&s.m.app, "buyer@example.com", users::PASSWORD).await;
    let fresh = again["access_token"].as_str().unwrap();
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), fresh).await).await;
    assert_eq!(o["status"], "completed");
    assert_eq!(balance(&s.m.app.state, &Account::VendorPending(va)), 0);
    assert_eq!(balance(&s.m.app.state, &Account::VendorAvailable(va)), 4090);
    assert_eq!(
        balance(&s.m.app.state, &Account::PlatformCommission),
        400 + 350
    );
    assert_ledger_ok(&s.m.app.state);
    // Firing again changes nothing.
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(balance(&s.m.app.state, &Account::VendorAvailable(va)), 4090);
    let rec = s.order_record(&oid);
    replay_matches(&rec);
    let events = crate::catalog::events(&s.m.app);
    assert_eq!(crate::catalog::of_type(&events, "Order.Created").len(), 1);
    assert_eq!(crate::catalog::of_type(&events, "Order.Completed").len(), 1);
    assert_eq!(
        crate::catalog::of_type(&events, "Order.StatusChanged").len(),
        rec.history.len()
    );
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_users_cart() {
    let s = Shop::new(10).await;
    let r =
        s.m.app
            .post_json(
                "/api/v1/cart/items",
                &json!({"product_id": s.knife.0, "variant_id": s.knife.1, "quantity": 2}),
            )
            .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.headers()["x-cart-token"].to_str().unwrap().to_string();
    let guest = json(r).await;
    assert_eq!(guest["item_count"], 2);
    // The guest comes back with the token and adds more.
    let r =
        s.m.app
            .request(Method::POST, "/api/v1/cart/items")
            .header("x-cart-token", &token)
            .json(&json!({"product_id": s.board.0, "variant_id": s.board.1, "quantity": 1}))
            .send()
            .await
            .unwrap();
    assert_eq!(json(r).await["item_count"], 3);
    let (_, user) = s.buyer("merge@example.com", 0).await;
    assert_eq!(
        s.add(&user, &s.knife, 1).await.status(),
        StatusCode::CREATED
    );
    // After login the first request still carrying the guest token merges the carts.
    let r =
        s.m.app
            .request(Method::GET, "/api/v1/cart")
            .bearer_auth(&user)
            .header("x-cart-token", &token)
            .send()
            .await
            .unwrap();
    let merged = json(r).await;
    assert_eq!(merged["item_count"], 4, "{merged}");
    let r =
        s.m.app
            .request(Method::GET, "/api/v1/cart")
            .header("x-cart-token", &token)
            .send()
            .await
            .unwrap();
    assert_eq!(json(r).await["item_count"], 0);
    let r =
        s.m.app
            .request(Method::GET, "/api/v1/cart")
            .header("x-cart-token", "not a token!")
            .send()
            .await
            .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

#[tokio::test]
async fn bad_cart_input_is_refused_and_changes_nothing() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("bad@example.com", 0).await;
    for (body, field, code) in [
        (
            json!({"product_id": s.knife.0, "variant_id": s.knife.1, "quantity": 0}),
            "quantity",
            "out_of_range",
        ),
        (
            json!({"product_id": s.knife.0, "variant_id": s.knife.1, "quantity": 100}),
            "quantity",
            "out_of_range",
        ),
        (
            json!({"product_id": s.knife.0, "variant_id": s.board.1, "quantity": 1}),
            "variant_id",
            "unknown_variant",
        ),
        (
            json!({"product_id": s.knife.0, "variant_id": s.knife.1, "quantity": 1, "price": 1}),
            "price",
            "unknown_field",
        ),
    ] {
        let r =
            s.m.send(Method::POST, "/api/v1/cart/items", &b, Some(body))
                .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let fe = crate::users::field_errors(&p);
        assert!(
            code == "unknown_field" || fe.iter().any(|(f, c)| f == field && c == code),
            "{p}"
        );
    }
    let cart = json(s.m.get("/api/v1/cart", &b).await).await;
    assert_eq!(cart["item_count"], 0);
    let r = s.checkout(&b, None).await;
    problem(r, StatusCode::CONFLICT, "cart_empty").await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_gives_one_order() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("idem@example.com", 100_000).await;
    s.add(&b, &s.knife, 1).await;
    let r1 = s.checkout(&b, Some("same")).await;
    assert_eq!(r1.status(), StatusCode::CREATED);
    let first = json(r1).await;
    let r2 = s.checkout(&b, Some("same")).await;
    assert_eq!(r2.status(), StatusCode::CREATED);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    let second = json(r2).await;
    assert_eq!(first["order"]["id"], second["order"]["id"]);
    let list = json(s.m.get("/api/v1/orders", &b).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.stock(&s.knife), (10, 1));
}

#[tokio::test]
async fn payment_failure_and_payment_timeout_release_the_stock() {
    let s = Shop::new(10).await;
    // No money in the wallet: the payment fails, the order too, the stock comes back.
    let (_, poor) = s.buyer("poor@example.com", 0).await;
    s.add(&poor, &s.knife, 3).await;
    let a = json(s.checkout(&poor, None).await).await;
    assert_eq!(a["payment"]["status"], "failed", "{a}");
    assert_eq!(a["order"]["status"], "payment_failed");
    assert_eq!(s.stock(&s.knife), (10, 0));

    // Cash on delivery never pays by itself... but an unpaid card order does time out:
    // a payment method that cannot start leaves the order waiting for payment.
    let (_, slow) = s.buyer("slow@example.com", 0).await;
    s.add(&slow, &s.knife, 4).await;
    let r =
        s.m.app
            .request(Method::POST, "/api/v1/orders")
            .bearer_auth(&slow)
            .json(&json!({"shipping_address": address(), "payment_method": "card"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["order"]["status"], "pending_payment", "{a}");
    assert!(a["payment_error"]["code"].is_string());
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.stock(&s.knife), (10, 4));
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(s.stock(&s.knife), (10, 4));
    s.m.app.state.clock.advance(time::Duration::minutes(16));
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(s.stock(&s.knife), (10, 0));
    let again = users::login(&s.m.app, "slow@example.com", users::PASSWORD).await;
    let fresh = again["access_token"].as_str().unwrap();
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), fresh).await).await;
    assert_eq!(o["status"], "cancelled");
    assert!(
        o["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"].as_str().unwrap().contains("timeout"))
    );
    // Firing twice changes nothing; nothing is left to fire.
    assert_eq!(orders::run_due(&s.m.app.state).await.unwrap(), 0);
    replay_matches(&s.order_record(&oid));
}

#[tokio::test]
async fn cancel_after_payment_refunds_the_wallet_and_the_ledger_balances() {
    let s = Shop::new(10).await;
    let (bid, b) = s.buyer("cancel@example.com", 10_000).await;
    s.add(&b, &s.knife, 2).await;
    s.add(&b, &s.board, 1).await;
    let a = json(s.checkout(&b, None).await).await;
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    let wallet = Account::Wallet(bid.parse().unwrap());
    assert_eq!(balance(&s.m.app.state, &wallet), 10_000 - 8480);
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/orders/{oid}/cancel"),
            &b,
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o = json(r).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["refunded"]["amount"], 8480);
    assert_eq!(balance(&s.m.app.state, &wallet), 10_000);
    assert_eq!(s.stock(&s.knife), (10, 0));
    assert_eq!(s.stock(&s.board), (10, 0));
    let va: VendorId = s.m.vendor_a_id.parse().unwrap();
    assert_eq!(balance(&s.m.app.state, &Account::VendorPending(va)), 0);
    assert_eq!(balance(&s.m.app.state, &Account::PlatformCommission), 0);
    assert_eq!(balance(&s.m.app.state, &Account::Refunds), 0);
    assert_ledger_ok(&s.m.app.state);
    // Cancelling again is an illegal transition and changes nothing.
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/orders/{oid}/cancel"),
            &b,
            None,
        )
        .await;
    problem(r, StatusCode::CONFLICT, "illegal_transition").await;
    assert_eq!(balance(&s.m.app.state, &wallet), 10_000);
    // The refund timer finds nothing left to do.
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(balance(&s.m.app.state, &wallet), 10_000);
    replay_matches(&s.order_record(&oid));
}

#[tokio::test]
async fn nobody_sees_or_moves_what_is_not_theirs_and_illegal_moves_are_409() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("own@example.com", 100_000).await;
    let (_, other) = s.buyer("other@example.com", 0).await;
    s.add(&b, &s.knife, 1).await;
    let a = json(s.checkout(&b, None).await).await;
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    let sub = a["order"]["sub_orders"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another customer: 404, for reads and for cancels.
    let r = s.m.get(&format!("/api/v1/orders/{oid}"), &other).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/orders/{oid}/cancel"),
            &other,
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // Vendor B sees nothing of vendor A's sub-order and cannot move it.
    let r =
        s.m.get(&format!("/api/v1/vendor/orders/{sub}"), &s.m.vendor_b)
            .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s
        .vendor_status(&s.m.vendor_b, &sub, json!({"status": "processing"}))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let list = json(s.m.get("/api/v1/vendor/orders", &s.m.vendor_b).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let list = json(s.m.get("/api/v1/vendor/orders", &s.m.vendor_a).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // A customer cannot use vendor routes at all.
    let r = s.m.get("/api/v1/vendor/orders", &b).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Skipping a step is refused, and nothing changes.
    let before = s.order_record(&oid);
    let r = s
        .vendor_status(&s.m.vendor_a, &sub, json!({"status": "delivered"}))
        .await;
    problem(r, StatusCode::CONFLICT, "illegal_transition").await;
    let r = s
        .vendor_status(&s.m.vendor_a, &sub, json!({"status": "cancelled"}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(s.order_record(&oid).history, before.history);
    // After shipping, the buyer can no longer cancel.
    s.vendor_status(&s.m.vendor_a, &sub, json!({"status": "processing"}))
        .await;
    let r = s
        .vendor_status(
            &s.m.vendor_a,
            &sub,
            json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/orders/{oid}/cancel"),
            &b,
            None,
        )
        .await;
    problem(r, StatusCode::CONFLICT, "already_shipped").await;
    assert_eq!(s.order_record(&oid).status.as_str(), "paid");
    // Admins see every order.
    let all = json(s.m.get("/api/v1/admin/orders", &s.m.admin).await).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let r = s.m.get("/api/v1/admin/orders", &b).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn two_hundred_concurrent_checkouts_for_fifty_units_sell_exactly_fifty() {
    let shop = Shop::new(50).await;
    let s = &shop;
    let app = &s.m.app;
    let mut buyers = Vec::new();
    for chunk in 0..10 {
        let mut hs = Vec::new();
        for i in 0..20 {
            let n = chunk * 20 + i;
            hs.push(async move {
                let (_, t) = s.buyer(&format!("storm{n}@example.com"), 10_000).await;
                assert_eq!(s.add(&t, &s.knife, 1).await.status(), StatusCode::CREATED);
                t
            });
        }
        buyers.extend(futures_util::future::join_all(hs).await);
    }
    let results = futures_util::future::join_all(buyers.iter().map(|t| s.checkout(t, None))).await;
    let mut sold = 0;
    let mut refused = 0;
    for r in results {
        match r.status() {
            StatusCode::CREATED => {
                let a = json(r).await;
                assert_eq!(a["order"]["status"], "paid", "{a}");
                sold += 1;
            }
            StatusCode::CONFLICT => {
                let p = json(r).await;
                assert_eq!(p["code"], "out_of_stock", "{p}");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((sold, refused), (50, 150));
    assert_eq!(s.stock(&s.knife), (50, 50));
    // Every held unit belongs to a paid order; nothing is held for anyone else.
    let rtx = app.state.store.read().unwrap();
    let orders_all = orders::store::all_orders(&rtx, None).unwrap();
    assert_eq!(orders_all.len(), 50);
    let held: i64 = orders_all
        .iter()
        .flat_map(|o| o.sub_orders.iter())
        .map(|sub| {
            let r = inventory::reservation(&rtx, sub.reservation_id)
                .unwrap()
                .unwrap();
            r.lines.iter().map(|l| l.quantity).sum::<i64>()
        })
        .sum();
    assert_eq!(held, 50);
    drop(rtx);
    assert_ledger_ok(&app.state);
}

#[tokio::test]
async fn a_payment_timeout_that_fell_due_while_down_fires_after_a_restart() {
    let s = Shop::new(10).await;
    let (_, slow) = s.buyer("restart@example.com", 0).await;
    s.add(&slow, &s.knife, 3).await;
    let r =
        s.m.app
            .request(Method::POST, "/api/v1/orders")
            .bearer_auth(&slow)
            .json(&json!({"shipping_address": address(), "payment_method": "card"}))
            .send()
            .await
            .unwrap();
    let oid = json(r).await["order"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.stock(&s.knife), (10, 3));
    let Shop { m, knife, .. } = s;
    let dir = m.app.stop().await;
    let app = crate::helpers::spawn_app_in(
        dir,
        |c| {
            c.auth.argon2_memory_kib = 64;
            c.auth.argon2_iterations = 1;
        },
        axum::Router::new(),
    )
    .await;
    orders::saga::ensure_registered(&app.state);
    app.state.clock.advance(time::Duration::minutes(20));
    assert_eq!(orders::run_due(&app.state).await.unwrap(), 1);
    let rtx = app.state.store.read().unwrap();
    let o = orders::store::order(&rtx, oid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(o.status.as_str(), "cancelled");
    let inv = inventory::inventory(&rtx, knife.0.parse().unwrap()).unwrap();
    assert_eq!(inv.total_available(), 10);
    assert!(orders::store::all_timers(&rtx).unwrap().is_empty());
}
