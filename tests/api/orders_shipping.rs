//! Per-vendor shipping through HTTP: a vendor sets its flat rate and free-shipping
//! threshold (an admin may too), carts and checkout use them, falling back to the config
//! defaults, and an order keeps what it was charged. Bad settings and wrong callers are
//! refused and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::Shop;
use crate::users::{field_errors, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn eur(a: i64) -> Value {
    json!({"amount": a, "currency": "EUR"})
}

fn group<'a>(cart: &'a Value, vendor: &str) -> &'a Value {
    cart["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["vendor_id"] == vendor)
        .unwrap()
}

#[tokio::test]
async fn a_vendors_own_shipping_rule_prices_carts_and_is_frozen_at_checkout() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("ship@example.com", 100_000).await;
    let path = "/api/v1/vendor/settings/shipping";
    let v = json(s.m.get(path, &s.m.vendor_a).await).await;
    assert_eq!(v["flat_rate"], Value::Null);
    assert_eq!(v["effective"]["flat_rate"], eur(490));
    assert_eq!(v["effective"]["free_shipping_threshold"], eur(5000));

    // Three knives (60.00) ship free by the defaults.
    s.add(&b, &s.knife, 3).await;
    s.add(&b, &s.board, 1).await;
    let cart = json(s.m.get("/api/v1/cart", &b).await).await;
    assert_eq!(group(&cart, &s.m.vendor_a_id)["shipping"]["amount"], 0);

    // Vendor A: 2.50 flat, free only from 100.00.
    let r =
        s.m.send(
            Method::PUT,
            path,
            &s.m.vendor_a,
            Some(json!({"flat_rate": eur(250), "free_shipping_threshold": eur(10_000)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json(r).await;
    assert_eq!(v["flat_rate"], eur(250));
    assert_eq!(v["effective"]["free_shipping_threshold"], eur(10_000));
    // Vendor B, by an admin: never free.
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/admin/vendors/{}/shipping", s.m.vendor_b_id),
            &s.m.admin,
            Some(json!({"free_shipping_threshold": eur(0)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["effective"]["flat_rate"], eur(490));

    let cart = json(s.m.get("/api/v1/cart", &b).await).await;
    assert_eq!(group(&cart, &s.m.vendor_a_id)["shipping"]["amount"], 250);
    assert_eq!(group(&cart, &s.m.vendor_b_id)["shipping"]["amount"], 490);
    assert_eq!(cart["shipping"]["amount"], 740);
    assert_eq!(cart["total"]["amount"], 6000 + 3500 + 740);

    let a = json(s.checkout(&b, None).await).await;
    assert_eq!(a["order"]["shipping"]["amount"], 740, "{a}");
    assert_eq!(a["order"]["total"]["amount"], 10_240);
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    // A later change does not touch the order.
    let r =
        s.m.send(
            Method::PUT,
            path,
            &s.m.vendor_a,
            Some(json!({"flat_rate": eur(999)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), &b).await).await;
    assert_eq!(o["shipping"]["amount"], 740);
    // Back to the defaults with an empty body (threshold default 50.00: free again).
    let r =
        s.m.send(Method::PUT, path, &s.m.vendor_a, Some(json!({})))
            .await;
    assert_eq!(json(r).await["effective"]["flat_rate"], eur(490));
}

#[tokio::test]
async fn bad_shipping_settings_and_wrong_callers_are_refused() {
    let s = Shop::new(1).await;
    let path = "/api/v1/vendor/settings/shipping";
    for (body, field, code) in [
        (
            json!({"flat_rate": {"amount": 250, "currency": "USD"}}),
            "flat_rate.currency",
            "currency_mismatch",
        ),
        (
            json!({"flat_rate": eur(-1)}),
            "flat_rate.amount",
            "out_of_range",
        ),
        (
            json!({"free_shipping_threshold": eur(1_000_000_000)}),
            "free_shipping_threshold.amount",
            "out_of_range",
        ),
    ] {
        let r = s.m.send(Method::PUT, path, &s.m.vendor_a, Some(body)).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&p).contains(&(field.into(), code.into())),
            "{p}"
        );
    }
    let r =
        s.m.send(
            Method::PUT,
            path,
            &s.m.vendor_a,
            Some(json!({"flat": eur(1)})),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    // A customer has no vendor settings; a vendor cannot use the admin route.
    let r =
        s.m.send(
            Method::PUT,
            path,
            &s.m.customer,
            Some(json!({"flat_rate": eur(1)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r =
        s.m.send(
            Method::PUT,
            &format!("/api/v1/admin/vendors/{}/shipping", s.m.vendor_b_id),
            &s.m.vendor_a,
            Some(json!({"flat_rate": eur(1)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v = json(s.m.get(path, &s.m.vendor_a).await).await;
    assert_eq!(v["flat_rate"], Value::Null);
    let v = json(
        s.m.get(
            &format!("/api/v1/admin/vendors/{}/shipping", s.m.vendor_b_id),
            &s.m.admin,
        )
        .await,
    )
    .await;
    assert_eq!(v["flat_rate"], Value::Null);
}
