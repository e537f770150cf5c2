//! A wallet checkout places the order and pays it in one store transaction: the buyer
//! sees a paid order or a failed payment with the stock back, never a half of it, and
//! the ledger and the audit chain verify after each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::Shop;
use crate::users::{json, problem};
use reqwest::{Method, StatusCode};
use serde_json::json;
use souk::services::payments::ledger::{self, Account};

fn wallet(s: &Shop, user: &str) -> i64 {
    let rtx = s.m.app.state.store.read().unwrap();
    let a = Account::Wallet(user.parse().unwrap());
    ledger::balance(&rtx, &a, souk::money::Currency::EUR)
        .unwrap()
        .amount
}

#[tokio::test]
async fn a_wallet_checkout_pays_in_the_same_commit_and_never_overspends() {
    let s = Shop::new(10).await;
    // What one knife costs delivered: the first buyer's order says.
    let (first, f) = s.buyer("first@example.com", 100_000).await;
    s.add(&f, &s.knife, 1).await;
    let a = json(s.checkout(&f, None).await).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    assert_eq!(a["payment"]["status"], "succeeded");
    assert!(a["payment_error"].is_null());
    let total = a["order"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(a["payment"]["amount"]["amount"], total);
    assert_eq!(wallet(&s, &first), 100_000 - total);

    // A buyer whose wallet covers exactly one such order: the first is paid, the second
    // fails whole (order payment_failed, stock released) and the wallet ends at zero.
    let (exact, e) = s.buyer("exact@example.com", total).await;
    s.add(&e, &s.knife, 1).await;
    let a = json(s.checkout(&e, None).await).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    assert_eq!(wallet(&s, &exact), 0);
    s.add(&e, &s.knife, 1).await;
    let r = s.checkout(&e, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["payment"]["status"], "failed", "{a}");
    assert_eq!(a["payment"]["failure_reason"], "insufficient_funds");
    assert_eq!(a["order"]["status"], "payment_failed");
    assert_eq!(wallet(&s, &exact), 0);
    // Two knives sold and paid; the failed order's reservation is gone.
    assert_eq!(s.stock(&s.knife), (10, 2));

    // A checkout refused before anything is written (empty cart, bad address) leaves
    // the wallet alone.
    let r = s.checkout(&f, None).await;
    problem(r, StatusCode::CONFLICT, "cart_empty").await;
    s.add(&f, &s.knife, 1).await;
    let r =
        s.m.app
            .request(Method::POST, "/api/v1/orders")
            .bearer_auth(&f)
            .json(
                &json!({"shipping_address": {"name": "", "line1": "x", "city": "y",
            "postal_code": "1", "country": "de"}, "payment_method": "wallet"}),
            )
            .send()
            .await
            .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(wallet(&s, &first), 100_000 - total);
    assert_eq!(s.stock(&s.knife), (10, 2));

    crate::orders::assert_ledger_ok(&s.m.app.state);
    // The audit chain has the payments' entries and verifies (souk check's payment part).
    let rtx = s.m.app.state.store.read().unwrap();
    let (entries, _) = souk::services::payments::audit::page(&rtx, 0, 100).unwrap();
    drop(rtx);
    for action in ["payment.initiated", "payment.captured", "payment.failed"] {
        assert!(entries.iter().any(|e| e.action == action), "{action}");
    }
    crate::payments::assert_ledger_ok(&s.m.app);
}

#[tokio::test]
async fn concurrent_wallet_checkouts_of_many_buyers_all_pay_once() {
    let s = Shop::new(100).await;
    let mut buyers = Vec::new();
    for i in 0..24 {
        let (id, t) = s.buyer(&format!("many{i}@example.com"), 100_000).await;
        s.add(&t, &s.knife, 1).await;
        buyers.push((id, t));
    }
    let s = std::sync::Arc::new(s);
    let mut handles = Vec::new();
    for (_, t) in &buyers {
        let (s, t) = (s.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            let r = s.checkout(&t, None).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            json(r).await
        }));
    }
    let mut totals = Vec::new();
    for h in handles {
        let a = h.await.unwrap();
        assert_eq!(a["order"]["status"], "paid", "{a}");
        totals.push(a["order"]["total"]["amount"].as_i64().unwrap());
    }
    for ((id, _), total) in buyers.iter().zip(totals) {
        assert_eq!(wallet(&s, id), 100_000 - total);
    }
    assert_eq!(s.stock(&s.knife), (100, 24));
    crate::orders::assert_ledger_ok(&s.m.app.state);
    crate::payments::assert_ledger_ok(&s.m.app);
}

/// POST /api/v1/orders as "buy now": {items: [...], shipping_address, payment_method}.
async fn buy_now(s: &Shop, token: &str, items: serde_json::Value) -> reqwest::Response {
    s.m.send(
        Method::POST,
        "/api/v1/orders",
        token,
        Some(
            json!({"items": items, "shipping_address": crate::orders::address(),
            "payment_method": "wallet"}),
        ),
    )
    .await
}

#[tokio::test]
async fn buy_now_orders_the_items_given_and_leaves_the_cart_alone() {
    let s = Shop::new(10).await;
    let (id, t) = s.buyer("now@example.com", 100_000).await;
    // A board waits in the cart; the buyer buys two knives (in two items) at once.
    s.add(&t, &s.board, 1).await;
    let item =
        |qty: i64| json!({"product_id": s.knife.0, "variant_id": s.knife.1, "quantity": qty});
    let r = buy_now(&s, &t, json!([item(1), item(1)])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    assert_eq!(a["payment"]["status"], "succeeded");
    let subs = a["order"]["sub_orders"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{a}");
    let lines = subs[0]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "the two items are one line: {a}");
    assert_eq!(lines[0]["quantity"], 2);
    let total = a["order"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(wallet(&s, &id), 100_000 - total);
    assert_eq!(s.stock(&s.knife), (10, 2));
    let cart = json(s.m.get("/api/v1/cart", &t).await).await;
    assert_eq!(cart["item_count"], 1, "the cart keeps its board: {cart}");

    // Every refusal names the item and changes nothing: no order, no money, no stock
    // moved, the cart as it was.
    let draft = {
        let mut b = crate::catalog::product_body("Draft", &s.m.knives, "DR-1", 500);
        b["status"] = json!("draft");
        let p = s.m.product(&s.m.vendor_a.clone(), b).await;
        json!({"product_id": p["id"], "variant_id": p["variants"][0]["id"], "quantity": 1})
    };
    let wrong_variant = json!({"product_id": s.knife.0, "variant_id": s.board.1, "quantity": 1});
    for (items, field, code) in [
        (json!([]), "items", "empty"),
        (json!([item(0)]), "items[0].quantity", "out_of_range"),
        (
            json!([item(1), item(100)]),
            "items[1].quantity",
            "out_of_range",
        ),
        (
            json!([item(1), wrong_variant]),
            "items[1].variant_id",
            "unknown_variant",
        ),
        (json!([draft]), "items[0].product_id", "not_purchasable"),
    ] {
        let p = problem(
            buy_now(&s, &t, items).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        let fe = crate::users::field_errors(&p);
        assert!(
            fe.iter().any(|(f, c)| f == field && c == code),
            "{field}: {p}"
        );
    }
    let r = buy_now(&s, &t, json!([item(9)])).await;
    problem(r, StatusCode::CONFLICT, "out_of_stock").await;
    let r = buy_now(
        &s,
        &t,
        json!([{"product_id": s.knife.0, "variant_id": s.knife.1,
        "quantity": 1, "price": 1}]),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(wallet(&s, &id), 100_000 - total);
    assert_eq!(s.stock(&s.knife), (10, 2));
    let list = json(s.m.get("/api/v1/orders", &t).await).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let cart = json(s.m.get("/api/v1/cart", &t).await).await;
    assert_eq!(cart["item_count"], 1, "{cart}");
    crate::orders::assert_ledger_ok(&s.m.app.state);
}
