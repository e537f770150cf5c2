//! Returns through HTTP with real stores: a partial return approved, received with
//! restocking and refunded to the wallet with the ledger balanced; a further return
//! rejected; refusals (someone else's order, another vendor's return, too many units,
//! outside the window, steps out of order) that change nothing; completion waiting for an
//! open return.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::{Shop, assert_ledger_ok, balance};
use crate::users::{self, field_errors, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::auth::VendorId;
use souk::services::orders;
use souk::services::payments::ledger::Account;

/// Buys `items` (item, quantity) as `buyer`, pays from the wallet, and has every vendor
/// ship and deliver. Returns the order as the buyer then sees it.
pub async fn delivered(s: &Shop, buyer: &str, items: &[(&(String, String), i64)]) -> Value {
    for (item, q) in items {
        assert_eq!(s.add(buyer, item, *q).await.status(), StatusCode::CREATED);
    }
    let r = s.checkout(buyer, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    for sub in a["order"]["sub_orders"].as_array().unwrap() {
        let tok = vendor_token(s, sub);
        let id = sub["id"].as_str().unwrap();
        for body in [
            json!({"status": "processing"}),
            json!({"status": "shipped", "carrier": "DHL", "tracking_number": "T1"}),
            json!({"status": "delivered"}),
        ] {
            let r = s.vendor_status(tok, id, body).await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    }
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), buyer).await).await;
    assert_eq!(o["status"], "delivered", "{o}");
    o
}

pub fn vendor_token<'a>(s: &'a Shop, sub: &Value) -> &'a str {
    if sub["vendor_id"] == s.m.vendor_a_id.as_str() {
        &s.m.vendor_a
    } else {
        &s.m.vendor_b
    }
}

/// The sub-order of `o` sold by the vendor of `item`'s product, and that item's line id.
pub fn part_of(o: &Value, item: &(String, String)) -> (String, String) {
    for sub in o["sub_orders"].as_array().unwrap() {
        for l in sub["lines"].as_array().unwrap() {
            if l["variant_id"] == item.1.as_str() {
                return (
                    sub["id"].as_str().unwrap().to_string(),
                    l["id"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    panic!("no line of {item:?} in {o}")
}

pub fn sub<'a>(o: &'a Value, id: &str) -> &'a Value {
    o["sub_orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

pub async fn ask_return(s: &Shop, token: &str, oid: &str, body: Value) -> reqwest::Response {
    s.m.send(
        Method::POST,
        &format!("/api/v1/orders/{oid}/return"),
        token,
        Some(body),
    )
    .await
}

pub async fn vendor_step(
    s: &Shop,
    token: &str,
    sub: &str,
    rid: &str,
    step: &str,
    body: Option<Value>,
) -> reqwest::Response {
    s.m.send(
        Method::POST,
        &format!("/api/v1/vendor/orders/{sub}/returns/{rid}/{step}"),
        token,
        body,
    )
    .await
}

fn events_match_history(s: &Shop, oid: &str) {
    let rec = s.order_record(oid);
    let ids: Vec<_> = rec.sub_orders.iter().map(|x| x.id).collect();
    let (status, subs) = orders::model::replay(&ids, &rec.history).unwrap();
    assert_eq!(status, rec.status);
    assert_eq!(
        subs,
        rec.sub_orders.iter().map(|x| x.status).collect::<Vec<_>>()
    );
    let events = crate::catalog::events(&s.m.app);
    let changed = crate::catalog::of_type(&events, "Order.StatusChanged");
    let mine = changed
        .iter()
        .filter(|e| crate::catalog::payload(e)["orderId"] == oid)
        .count();
    assert_eq!(mine, rec.history.len());
}

#[tokio::test]
async fn a_partial_return_is_approved_received_restocked_and_refunded() {
    let s = Shop::new(10).await;
    let (bid, b) = s.buyer("returner@example.com", 100_000).await;
    let o = delivered(&s, &b, &[(&s.knife, 3), (&s.board, 1)]).await;
    let oid = o["id"].as_str().unwrap().to_string();
    let (sa, knife_line) = part_of(&o, &s.knife);
    let wallet = Account::Wallet(bid.parse().unwrap());
    let va: VendorId = s.m.vendor_a_id.parse().unwrap();
    let paid_wallet = balance(&s.m.app.state, &wallet);
    // Knives 60.00 (free shipping from 50.00) less 10 % commission on the goods.
    assert_eq!(
        balance(&s.m.app.state, &Account::VendorPending(va)),
        6000 - 600
    );
    assert_eq!(s.stock(&s.knife), (7, 0));

    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [knife_line], "quantities": [2], "reason": "too blunt"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = json(r).await;
    let part = sub(&o, &sa);
    assert_eq!(part["status"], "return_requested");
    let rid = part["returns"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(part["returns"][0]["status"], "requested");
    // Prices include tax here: the two knives at their frozen price, shipping not refunded.
    assert_eq!(part["returns"][0]["amount"]["amount"], 4000);
    // The vendor sees the return on its sub-order.
    let v = json(
        s.m.get(&format!("/api/v1/vendor/orders/{sa}"), &s.m.vendor_a)
            .await,
    )
    .await;
    assert_eq!(v["returns"][0]["id"], rid.as_str());

    let r = vendor_step(&s, &s.m.vendor_a, &sa, &rid, "approve", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["returns"][0]["status"], "approved");
    let r = vendor_step(
        &s,
        &s.m.vendor_a,
        &sa,
        &rid,
        "received",
        Some(json!({"restock": true})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json(r).await;
    assert_eq!(v["status"], "refunded", "{v}");
    assert_eq!(v["returns"][0]["status"], "refunded");
    assert_eq!(v["refunded"]["amount"], 4000);
    let line = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == knife_line.as_str())
        .unwrap();
    assert_eq!(
        (line["returned"].as_i64(), line["restocked"].as_i64()),
        (Some(2), Some(2))
    );
    // Back on hand, money back in the wallet, taken from the vendor and the commission.
    assert_eq!(s.stock(&s.knife), (9, 0));
    assert_eq!(balance(&s.m.app.state, &wallet), paid_wallet + 4000);
    assert_eq!(
        balance(&s.m.app.state, &Account::VendorPending(va)),
        5400 - 3600
    );
    assert_eq!(balance(&s.m.app.state, &Account::Refunds), 0);
    assert_ledger_ok(&s.m.app.state);

    // Only one knife is left to return.
    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [knife_line], "quantities": [2], "reason": "again"}),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert!(
        field_errors(&p).contains(&("quantities[0]".into(), "too_many".into())),
        "{p}"
    );
    // A further return of the last one, rejected: the part goes back to refunded.
    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [knife_line], "quantities": [1], "reason": "the last one too"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = json(r).await;
    let rid2 = sub(&o, &sa)["returns"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = vendor_step(
        &s,
        &s.m.vendor_a,
        &sa,
        &rid2,
        "reject",
        Some(json!({"note": "used"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json(r).await;
    assert_eq!(v["status"], "refunded");
    assert_eq!(v["returns"][1]["status"], "rejected");
    assert_eq!(v["returns"][1]["note"], "used");
    assert_eq!(balance(&s.m.app.state, &wallet), paid_wallet + 4000);

    // The window passes: the order completes; the vendor gets what is left of its share.
    s.m.app.state.clock.advance(time::Duration::days(15));
    orders::run_due(&s.m.app.state).await.unwrap();
    let rec = s.order_record(&oid);
    assert_eq!(rec.status.as_str(), "completed");
    assert_eq!(balance(&s.m.app.state, &Account::VendorPending(va)), 0);
    assert_eq!(
        balance(&s.m.app.state, &Account::VendorAvailable(va)),
        5400 - 3600
    );
    assert_eq!(
        balance(&s.m.app.state, &Account::PlatformCommission),
        600 - 400 + 350
    );
    assert_ledger_ok(&s.m.app.state);
    events_match_history(&s, &oid);
}

#[tokio::test]
async fn refused_returns_change_nothing() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("strict@example.com", 100_000).await;
    let (_, other) = s.buyer("stranger@example.com", 0).await;
    let o = delivered(&s, &b, &[(&s.knife, 2), (&s.board, 1)]).await;
    let oid = o["id"].as_str().unwrap().to_string();
    let (sa, knife_line) = part_of(&o, &s.knife);
    let (_, board_line) = part_of(&o, &s.board);
    let before = s.order_record(&oid).history;
    let one = json!({"lines": [knife_line], "quantities": [1], "reason": "no"});

    // Someone else's order: 404, and without a token 401.
    let r = ask_return(&s, &other, &oid, one.clone()).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r =
        s.m.app
            .post_json(&format!("/api/v1/orders/{oid}/return"), &one)
            .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Bad bodies: 422 naming the field.
    for (body, field, code) in [
        (
            json!({"lines": [knife_line], "quantities": [3], "reason": "x"}),
            "quantities[0]",
            "too_many",
        ),
        (
            json!({"lines": [knife_line, board_line], "quantities": [1], "reason": "x"}),
            "quantities",
            "length_mismatch",
        ),
        (
            json!({"lines": [sa], "quantities": [1], "reason": "x"}),
            "lines[0]",
            "unknown_line",
        ),
        (
            json!({"lines": [knife_line, knife_line], "quantities": [1, 1], "reason": "x"}),
            "lines[1]",
            "duplicate",
        ),
        (
            json!({"lines": [knife_line], "quantities": [0], "reason": "x"}),
            "quantities[0]",
            "out_of_range",
        ),
        (
            json!({"lines": [knife_line], "quantities": [1], "reason": " "}),
            "reason",
            "invalid_length",
        ),
        (
            json!({"lines": [], "quantities": [], "reason": "x"}),
            "lines",
            "invalid_length",
        ),
    ] {
        let r = ask_return(&s, &b, &oid, body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&p).contains(&(field.into(), code.into())),
            "{field} {code}: {p}"
        );
    }
    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [knife_line], "quantities": [1], "reason": "x", "refund_to": "me"}),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(s.order_record(&oid).history, before);

    // A valid request; then vendor steps out of order and by the wrong people.
    let r = ask_return(&s, &b, &oid, one.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rid = sub(&json(r).await, &sa)["returns"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = s.order_record(&oid).history;
    // While it is open, a second return of the same part waits.
    let r = ask_return(&s, &b, &oid, one.clone()).await;
    problem(r, StatusCode::CONFLICT, "return_open").await;
    // Vendor B cannot see or decide vendor A's return; a customer cannot use the route.
    let r = vendor_step(&s, &s.m.vendor_b, &sa, &rid, "approve", None).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = vendor_step(&s, &b, &sa, &rid, "approve", None).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Received before approved; an unknown return; a missing restock choice.
    let r = vendor_step(
        &s,
        &s.m.vendor_a,
        &sa,
        &rid,
        "received",
        Some(json!({"restock": false})),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "illegal_transition").await;
    let r = vendor_step(&s, &s.m.vendor_a, &sa, &sa, "approve", None).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = vendor_step(&s, &s.m.vendor_a, &sa, &rid, "received", Some(json!({}))).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(s.order_record(&oid).history, before);
    assert_eq!(s.stock(&s.knife), (8, 0));
    // Approve twice: the second is a conflict.
    let r = vendor_step(&s, &s.m.vendor_a, &sa, &rid, "approve", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = vendor_step(&s, &s.m.vendor_a, &sa, &rid, "approve", None).await;
    problem(r, StatusCode::CONFLICT, "illegal_transition").await;
    // Received without restocking: the stock stays as it was, the money goes back.
    let r = vendor_step(
        &s,
        &s.m.vendor_a,
        &sa,
        &rid,
        "received",
        Some(json!({"restock": false})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.stock(&s.knife), (8, 0));
    // A decided return cannot be rejected or received again.
    for step in ["reject", "received"] {
        let body = (step == "received").then(|| json!({"restock": true}));
        let r = vendor_step(&s, &s.m.vendor_a, &sa, &rid, step, body).await;
        problem(r, StatusCode::CONFLICT, "illegal_transition").await;
    }
    assert_eq!(s.stock(&s.knife), (8, 0));
    assert_ledger_ok(&s.m.app.state);

    // Outside the window: 409 with the reason, nothing changed.
    s.m.app.state.clock.advance(time::Duration::days(15));
    let fresh = users::login(&s.m.app, "strict@example.com", users::PASSWORD).await;
    let fresh = fresh["access_token"].as_str().unwrap().to_string();
    let before = s.order_record(&oid).history;
    let r = ask_return(
        &s,
        &fresh,
        &oid,
        json!({"lines": [board_line], "quantities": [1], "reason": "late"}),
    )
    .await;
    let p = problem(r, StatusCode::CONFLICT, "return_window_closed").await;
    assert!(p["detail"].as_str().unwrap().contains("14 days"), "{p}");
    assert_eq!(s.order_record(&oid).history, before);
}

#[tokio::test]
async fn a_return_before_delivery_is_refused_and_completion_waits_for_an_open_return() {
    let s = Shop::new(10).await;
    let (_, b) = s.buyer("early@example.com", 100_000).await;
    s.add(&b, &s.knife, 1).await;
    let a = json(s.checkout(&b, None).await).await;
    let oid = a["order"]["id"].as_str().unwrap().to_string();
    let (_, line) = part_of(&a["order"], &s.knife);
    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [line], "quantities": [1], "reason": "not yet"}),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "not_delivered").await;

    let o = delivered(&s, &b, &[(&s.board, 1)]).await;
    let oid = o["id"].as_str().unwrap().to_string();
    let (sb, line) = part_of(&o, &s.board);
    let r = ask_return(
        &s,
        &b,
        &oid,
        json!({"lines": [line], "quantities": [1], "reason": "warped"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rid = sub(&json(r).await, &sb)["returns"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The window passes while the return is open: the order does not complete.
    s.m.app.state.clock.advance(time::Duration::days(15));
    orders::run_due(&s.m.app.state).await.unwrap();
    assert_eq!(s.order_record(&oid).status.as_str(), "delivered");
    let vendor = users::login(&s.m.app, "b@example.com", users::PASSWORD).await;
    let vendor = vendor["access_token"].as_str().unwrap().to_string();
    for (step, body) in [
        ("approve", None),
        ("received", Some(json!({"restock": true}))),
    ] {
        let r = vendor_step(&s, &vendor, &sb, &rid, step, body).await;
        assert_eq!(r.status(), StatusCode::OK, "{step}");
    }
    // Fully returned and refunded; an hour later the order completes with nothing owed.
    s.m.app.state.clock.advance(time::Duration::hours(2));
    orders::run_due(&s.m.app.state).await.unwrap();
    let rec = s.order_record(&oid);
    assert_eq!(rec.status.as_str(), "completed");
    assert_eq!(rec.refunded, 3500);
    let vb: VendorId = s.m.vendor_b_id.parse().unwrap();
    // 35.00 + 4.90 shipping less 3.50 commission, less the 35.00 refunded (31.50 from the
    // vendor, 3.50 from the commission): the vendor keeps the shipping.
    assert_eq!(balance(&s.m.app.state, &Account::VendorAvailable(vb)), 490);
    assert_ledger_ok(&s.m.app.state);
    events_match_history(&s, &oid);
}
