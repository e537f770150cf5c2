//! Guest checkout through HTTP: a guest's cart becomes an order paid by card, read,
//! returned and cancelled with the access token shown at checkout; refusals (a wallet, no
//! email, no or a bad cart token, a wrong access token) change nothing; the same
//! Idempotency-Key gives one order; and a user who registers with that email sees the
//! order once the email is verified, not before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::{Shop, address, assert_ledger_ok};
use crate::orders_returns::{part_of, vendor_token};
use crate::users::{self, field_errors, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn card() -> Value {
    json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"})
}

async fn shop() -> Shop {
    Shop::with(10, |c| {
        c.payments.test_gateway = true;
        c.payments.fraud.enabled = false;
    })
    .await
}

/// A guest cart holding `qty` of `item`; returns its token.
async fn guest_cart(s: &Shop, item: &(String, String), qty: i64) -> String {
    let r =
        s.m.app
            .post_json(
                "/api/v1/cart/items",
                &json!({"product_id": item.0, "variant_id": item.1, "quantity": qty}),
            )
            .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.headers()["x-cart-token"].to_str().unwrap().to_string()
}

async fn guest_checkout(
    s: &Shop,
    cart: Option<&str>,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut b = s.m.app.request(Method::POST, "/api/v1/orders").json(&body);
    if let Some(t) = cart {
        b = b.header("x-cart-token", t);
    }
    if let Some(k) = key {
        b = b.header("Idempotency-Key", k);
    }
    b.send().await.unwrap()
}

fn by_card(email: &str) -> Value {
    json!({"email": email, "shipping_address": address(), "payment_method": "card", "card": card()})
}

async fn order_count(s: &Shop) -> usize {
    let all = json(s.m.get("/api/v1/admin/orders", &s.m.admin).await).await;
    all["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_guest_checks_out_reads_and_returns_with_the_access_token() {
    let s = shop().await;
    let cart = guest_cart(&s, &s.knife, 2).await;

    // Refusals first: each changes nothing.
    let r = guest_checkout(&s, None, None, by_card("g@example.com")).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = guest_checkout(&s, Some("bad token!"), None, by_card("g@example.com")).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    for (body, field, code) in [
        (
            json!({"email": "g@example.com", "shipping_address": address(), "payment_method": "wallet"}),
            "payment_method",
            "wallet_needs_account",
        ),
        (
            json!({"email": "not-an-email", "shipping_address": address(), "payment_method": "cod"}),
            "email",
            "invalid_email",
        ),
    ] {
        let r = guest_checkout(&s, Some(&cart), None, body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&p).contains(&(field.into(), code.into())),
            "{p}"
        );
    }
    let r = guest_checkout(
        &s,
        Some(&cart),
        None,
        json!({"shipping_address": address(), "payment_method": "cod"}),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let r = guest_checkout(
        &s,
        Some(&cart),
        None,
        json!({"email": "g@example.com", "shipping_address": address(), "payment_method": "cod", "payment_method_id": "x"}),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(order_count(&s).await, 0);
    assert_eq!(s.stock(&s.knife), (10, 0));

    // By card, twice with the same key: one order, paid, with an access token.
    let r = guest_checkout(&s, Some(&cart), Some("g-1"), by_card("Guest@Example.com")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    let r = guest_checkout(&s, Some(&cart), Some("g-1"), by_card("Guest@Example.com")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(json(r).await["order"]["id"], a["order"]["id"]);
    assert_eq!(a["payment"]["status"], "succeeded", "{a}");
    assert_eq!(a["order"]["status"], "paid");
    assert_eq!(a["order"]["guest_email"], "Guest@example.com");
    let token = a["access_token"].as_str().unwrap().to_string();
    assert!(token.len() >= 43);
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    assert_eq!(order_count(&s).await, 1);
    assert_eq!(s.stock(&s.knife), (10, 2));
    // The guest cart is empty now; a second checkout of it is a conflict.
    let r = guest_checkout(&s, Some(&cart), None, by_card("g@example.com")).await;
    problem(r, StatusCode::CONFLICT, "cart_empty").await;
    // The token is not stored: only its hash is.
    let rec = s.order_record(&oid);
    assert_ne!(rec.access_hash.as_deref(), Some(token.as_str()));
    assert!(rec.access_hash.is_some());

    // Reading: with the token; a wrong token or none is refused.
    let r =
        s.m.app
            .get(&format!("/api/v1/orders/{oid}?access_token={token}"))
            .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["id"], oid.as_str());
    let wrong = format!("{}x", &token[..token.len() - 1]);
    let r =
        s.m.app
            .get(&format!("/api/v1/orders/{oid}?access_token={wrong}"))
            .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = s.m.app.get(&format!("/api/v1/orders/{oid}")).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Another customer does not see it either.
    let r =
        s.m.get(&format!("/api/v1/orders/{oid}"), &s.m.customer)
            .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // Delivered, then returned by the guest with the token.
    for sub in a["order"]["sub_orders"].as_array().unwrap() {
        let id = sub["id"].as_str().unwrap();
        for body in [
            json!({"status": "processing"}),
            json!({"status": "shipped", "carrier": "DHL", "tracking_number": "T1"}),
            json!({"status": "delivered"}),
        ] {
            let r = s.vendor_status(vendor_token(&s, sub), id, body).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    let (_, line) = part_of(&a["order"], &s.knife);
    let body = json!({"lines": [line], "quantities": [1], "reason": "one too many"});
    let r =
        s.m.app
            .post_json(
                &format!("/api/v1/orders/{oid}/return?access_token={wrong}"),
                &body,
            )
            .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r =
        s.m.app
            .post_json(
                &format!("/api/v1/orders/{oid}/return?access_token={token}"),
                &body,
            )
            .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = json(r).await;
    assert_eq!(o["sub_orders"][0]["status"], "return_requested");
    let actor = s.order_record(&oid).history.last().unwrap().actor.clone();
    assert!(actor.starts_with("guest:"), "{actor}");
    assert_ledger_ok(&s.m.app.state);
}

#[tokio::test]
async fn a_guest_cancels_with_the_token_and_the_card_is_refunded() {
    let s = shop().await;
    let cart = guest_cart(&s, &s.board, 1).await;
    let a = json(guest_checkout(&s, Some(&cart), None, by_card("c2@example.com")).await).await;
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    let token = a["access_token"].as_str().unwrap().to_string();
    let r =
        s.m.app
            .request(
                Method::PUT,
                &format!("/api/v1/orders/{oid}/cancel?access_token=nope-nope-nope"),
            )
            .send()
            .await
            .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(s.order_record(&oid).status.as_str(), "paid");
    let r =
        s.m.app
            .request(
                Method::PUT,
                &format!("/api/v1/orders/{oid}/cancel?access_token={token}"),
            )
            .json(&json!({"reason": "wrong size"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let o = json(r).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["refunded"]["amount"], o["total"]["amount"]);
    assert_eq!(s.stock(&s.board), (10, 0));
    assert_ledger_ok(&s.m.app.state);
}

#[tokio::test]
async fn guest_orders_show_up_for_the_user_once_that_email_is_verified() {
    let s = shop().await;
    let cart = guest_cart(&s, &s.knife, 1).await;
    let cod = json!({"email": "later@example.com", "shipping_address": address(), "payment_method": "cod"});
    let a = json(guest_checkout(&s, Some(&cart), None, cod).await).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    let oid = a["order"]["id"].as_str().unwrap().to_string();

    // Registered with that email but not verified: nothing to see.
    let (_, tok, _) = users::user(&s.m.app, "LATER@example.com").await;
    let list = json(s.m.get("/api/v1/orders", &tok).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let r = s.m.get(&format!("/api/v1/orders/{oid}"), &tok).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // Verified: the guest order is theirs, listed with their own orders, newest first.
    let t = users::token_from_mail(&s.m.app, "LATER@example.com", "/account/verify-email");
    let r =
        s.m.app
            .post_json("/api/v1/auth/verify-email", &json!({"token": t}))
            .await;
    assert!(r.status().is_success(), "{}", r.status());
    crate::orders::fund(&s.m.app.state, &users_id(&s, &tok).await, 10_000).await;
    s.add(&tok, &s.board, 1).await;
    let own = json(s.checkout(&tok, None).await).await;
    let list = json(s.m.get("/api/v1/orders", &tok).await).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![own["order"]["id"].as_str().unwrap(), oid.as_str()]
    );
    let r = s.m.get(&format!("/api/v1/orders/{oid}"), &tok).await;
    assert_eq!(r.status(), StatusCode::OK);
    // And they may cancel it like their own.
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/orders/{oid}/cancel"),
            &tok,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Someone else still sees nothing.
    let list = json(s.m.get("/api/v1/orders", &s.m.customer).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

async fn users_id(s: &Shop, token: &str) -> String {
    let p = json(s.m.get("/api/v1/users/profile", token).await).await;
    p["id"].as_str().unwrap().to_string()
}
