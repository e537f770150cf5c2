//! Payments and wallets through HTTP: card top-ups with and without the confirmation
//! step, declines, wallet payments (also 100 at once), refunds, idempotent replays,
//! other people's payments, events. Shared helpers for the other `payments_*` modules.

#![allow(dead_code)]

use crate::helpers::{TestApp, spawn_app_with};
use crate::users::{admin, field_errors, get_auth, json, problem, user};
use reqwest::StatusCode;
use serde_json::{Value, json};
use souk::auth::{UserId, VendorId};
use souk::config::Config;
use souk::error::{Error, Result};
use souk::log::event::Envelope;
use souk::money::{Currency, Money};
use souk::services::payments::OrderPayments;
use souk::services::payments::model::{AmountDue, PaymentOutcome};
use souk::store::Tx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub const OK_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";
pub const NO_FUNDS_CARD: &str = "4000000000009995";
pub const CONFIRM_CARD: &str = "4000000000003220";
pub const BROKEN_GATEWAY_CARD: &str = "4000000000000119";

/// Light argon2, the test gateway on, fraud rules off unless a test turns them on.
pub fn pay_config(c: &mut Config) {
    c.auth.argon2_memory_kib = 64;
    c.auth.argon2_iterations = 1;
    c.payments.test_gateway = true;
    c.payments.fraud.enabled = false;
}

pub async fn pay_app() -> TestApp {
    spawn_app_with(pay_config).await
}

pub fn eur(a: i64) -> Money {
    Money::new(a, Currency::EUR)
}

pub fn card(number: &str) -> Value {
    json!({"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"})
}

/// POST with a bearer token and an optional Idempotency-Key.
pub async fn post(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut b = app
        .request(reqwest::Method::POST, path)
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        b = b.header("Idempotency-Key", k);
    }
    b.send().await.unwrap()
}

/// Tops a wallet up by test card; returns the payment.
pub async fn topup(app: &TestApp, token: &str, amount: i64) -> Value {
    let r = post(
        app,
        "/api/v1/wallets/topup",
        token,
        &json!({"amount": {"amount": amount, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)}),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let p = json(r).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    p
}

pub async fn balance(app: &TestApp, token: &str) -> i64 {
    let r = get_auth(app, "/api/v1/wallets/balance", token).await;
    assert_eq!(r.status(), StatusCode::OK);
    json(r).await["balance"]["amount"].as_i64().unwrap()
}

/// Runs `souk check`'s payment part on the live store; panics with the report if it fails.
pub fn assert_ledger_ok(app: &TestApp) {
    let rtx = app.state.store.read().unwrap();
    let mut report = souk::check::Report::default();
    souk::services::payments::check(&app.state.config, &rtx, &mut report).unwrap();
    assert!(report.ok(), "{report}");
}

/// Every event the service emitted so far: the outbox plus what the relay already moved.
pub fn events(app: &TestApp) -> Vec<Envelope> {
    use redb::ReadableTable;
    let mut out = Vec::new();
    if let Ok(mut c) = app
        .state
        .log
        .consumer(&format!("t{}", Uuid::now_v7().simple()), "payments")
    {
        while let Ok(batch) = c.poll(1000) {
            if batch.is_empty() {
                break;
            }
            out.extend(batch.into_iter().map(|r| r.envelope));
        }
    }
    let rtx = app.state.store.read().unwrap();
    if let Ok(t) = rtx.open_table(souk::store::tables::OUTBOX_SEQ_TO_EVENT) {
        for row in t.iter().unwrap() {
            let (_, v) = row.unwrap();
            let e: Envelope = serde_json::from_slice(v.value()).unwrap();
            if !out.iter().any(|o| o.id == e.id) {
                out.push(e);
            }
        }
    }
    out.retain(|e| e.topic == "payments");
    out
}

/// Orders as the order service will answer for them: an amount per order and payer.
#[derive(Default)]
pub struct FakeOrders {
    pub orders: Mutex<HashMap<Uuid, FakeOrder>>,
    pub told: Mutex<Vec<(Uuid, PaymentOutcome)>>,
}

pub struct FakeOrder {
    pub payer: UserId,
    pub amount: Money,
    pub vendors: Vec<(VendorId, Money)>,
    pub paid: bool,
}

impl FakeOrders {
    pub fn install(app: &TestApp) -> Arc<FakeOrders> {
        let f = Arc::new(FakeOrders::default());
        app.state.payments.register_orders(f.clone()).unwrap();
        f
    }

    pub fn add(&self, payer: &str, amount: i64) -> Uuid {
        self.add_with_vendors(payer, amount, vec![])
    }

    pub fn add_with_vendors(
        &self,
        payer: &str,
        amount: i64,
        vendors: Vec<(VendorId, Money)>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        self.orders.lock().unwrap().insert(
            id,
            FakeOrder {
                payer: payer.parse().unwrap(),
                amount: eur(amount),
                vendors,
                paid: false,
            },
        );
        id
    }
}

impl OrderPayments for FakeOrders {
    fn amount_due(
        &self,
        _tx: &redb::WriteTransaction,
        order_id: Uuid,
        payer: UserId,
    ) -> Result<AmountDue> {
        let orders = self.orders.lock().unwrap();
        let o = orders
            .get(&order_id)
            .filter(|o| o.payer == payer)
            .ok_or_else(|| Error::not_found("order"))?;
        if o.paid {
            return Err(Error::conflict("already_paid", "this order is paid"));
        }
        Ok(AmountDue {
            amount: o.amount,
            vendor_shares: o.vendors.clone(),
        })
    }

    fn on_payment_result(
        &self,
        _tx: &mut Tx<'_>,
        order_id: Uuid,
        outcome: &PaymentOutcome,
    ) -> Result<()> {
        if matches!(
            outcome,
            PaymentOutcome::Succeeded { .. } | PaymentOutcome::Deferred { .. }
        ) && let Some(o) = self.orders.lock().unwrap().get_mut(&order_id)
        {
            o.paid = true;
        }
        self.told.lock().unwrap().push((order_id, outcome.clone()));
        Ok(())
    }
}

pub async fn pay_order(app: &TestApp, token: &str, order: Uuid, method: &str) -> reqwest::Response {
    post(
        app,
        "/api/v1/payments/initiate",
        token,
        &json!({"order_id": order, "method": method}),
        None,
    )
    .await
}

#[tokio::test]
async fn top_up_by_test_card_with_and_without_confirmation() {
    let app = pay_app().await;
    let (_, token, _) = user(&app, "ada@example.com").await;
    assert_eq!(balance(&app, &token).await, 0);

    let p = topup(&app, &token, 5000).await;
    assert_eq!(p["test_mode"], true);
    assert_eq!(p["notice"], "test gateway: no real money moved");
    assert_eq!(p["card"]["last4"], "4242");
    assert_eq!(p["card"]["brand"], "visa");
    assert_eq!(p["purpose"], "wallet_topup");
    assert_eq!(balance(&app, &token).await, 5000);

    // The confirmation step: pending until the right code comes.
    let body = json!({"amount": {"amount": 2000, "currency": "EUR"}, "method": "card", "card": card(CONFIRM_CARD)});
    let r = post(&app, "/api/v1/wallets/topup", &token, &body, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let pending = json(r).await;
    assert_eq!(pending["status"], "requires_confirmation");
    assert_eq!(pending["next_action"]["type"], "confirm");
    assert_eq!(balance(&app, &token).await, 5000);
    let id = pending["payment_id"].as_str().unwrap();
    let r = post(
        &app,
        "/api/v1/payments/confirm",
        &token,
        &json!({"payment_id": id, "code": "123456"}),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["status"], "succeeded");
    assert_eq!(balance(&app, &token).await, 7000);
    // Confirming twice is a conflict and moves nothing.
    let r = post(
        &app,
        "/api/v1/payments/confirm",
        &token,
        &json!({"payment_id": id, "code": "123456"}),
        None,
    )
    .await;
    problem(r, StatusCode::CONFLICT, "not_awaiting_confirmation").await;

    // A wrong code fails the payment.
    let r = post(&app, "/api/v1/wallets/topup", &token, &body, None).await;
    let id = json(r).await["payment_id"].as_str().unwrap().to_string();
    let r = post(
        &app,
        "/api/v1/payments/confirm",
        &token,
        &json!({"payment_id": id, "code": "000000"}),
        None,
    )
    .await;
    let failed = json(r).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_reason"], "authentication_failed");

    // Declines are recorded as failed payments and move nothing.
    for (number, reason) in [
        (DECLINED_CARD, "card_declined"),
        (NO_FUNDS_CARD, "insufficient_funds"),
    ] {
        let body = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(number)});
        let r = post(&app, "/api/v1/wallets/topup", &token, &body, None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let p = json(r).await;
        assert_eq!(p["status"], "failed");
        assert_eq!(p["failure_reason"], reason);
    }
    assert_eq!(balance(&app, &token).await, 7000);

    // The wallet history shows each credit with its journal reference, newest first.
    let r = get_auth(&app, "/api/v1/wallets/transactions?limit=1", &token).await;
    let page = json(r).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["amount"]["amount"], 2000);
    let cursor = page["next_cursor"].as_str().unwrap();
    let r = get_auth(
        &app,
        &format!("/api/v1/wallets/transactions?cursor={cursor}"),
        &token,
    )
    .await;
    let rest = json(r).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["amount"]["amount"], 5000);
    assert_eq!(rest["items"][0]["journal_id"], p["journal"][0]);
    assert!(rest["next_cursor"].is_null());

    let kinds: Vec<String> = events(&app)
        .iter()
        .map(|e| e.type_name().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "Payment.Initiated").count(),
        5,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "Payment.Completed").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "Payment.Failed").count(),
        3,
        "{kinds:?}"
    );
    assert_ledger_ok(&app);
}

#[tokio::test]
async fn bad_payment_requests_are_refused_and_change_nothing() {
    let app = pay_app().await;
    let (_, token, _) = user(&app, "bob@example.com").await;
    let topup_with = |extra: Value| {
        let mut b = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    let cases = [
        (topup_with(json!({"surprise": 1})), "surprise"),
        (topup_with(json!({"status": "succeeded"})), "status"),
        (
            topup_with(json!({"amount": {"amount": 1, "currency": "EUR"}})),
            "amount.amount",
        ),
        (
            topup_with(json!({"amount": {"amount": 1000, "currency": "USD"}})),
            "amount.currency",
        ),
        (
            topup_with(json!({"amount": {"amount": 10.5, "currency": "EUR"}})),
            "amount.amount",
        ),
        (
            topup_with(json!({"method": "wallet", "card": null})),
            "method",
        ),
        (
            topup_with(json!({"card": card("4111111111111111")})),
            "card.number",
        ),
        (
            topup_with(json!({"card": card("4242424242424241")})),
            "card.number",
        ),
        (
            topup_with(
                json!({"card": {"number": OK_CARD, "exp_month": 13, "exp_year": 2040, "cvc": "1"}}),
            ),
            "card.exp_month",
        ),
        (topup_with(json!({"card": null})), "card"),
        (
            topup_with(json!({"payment_method_id": Uuid::now_v7()})),
            "payment_method_id",
        ),
    ];
    for (body, field) in cases {
        let r = post(&app, "/api/v1/wallets/topup", &token, &body, None).await;
        let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&b).iter().any(|(f, _)| f.starts_with(field)),
            "{field}: {b}"
        );
    }
    // Orders: no such order, or an amount the caller may not set.
    let r = post(
        &app,
        "/api/v1/payments/initiate",
        &token,
        &json!({"order_id": Uuid::now_v7(), "method": "wallet"}),
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = post(
        &app,
        "/api/v1/payments/initiate",
        &token,
        &json!({"order_id": Uuid::now_v7(), "method": "wallet", "amount": {"amount": 1, "currency": "EUR"}}),
        None,
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    // No credentials, bad JSON, wrong content type.
    let r = app
        .post_json("/api/v1/wallets/topup", &topup_with(json!({})))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .request(reqwest::Method::POST, "/api/v1/wallets/topup")
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"amount\":")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "bad_request").await;
    let r = app
        .request(reqwest::Method::POST, "/api/v1/wallets/topup")
        .bearer_auth(&token)
        .body(topup_with(json!({})).to_string())
        .send()
        .await
        .unwrap();
    problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // Card payments are off unless configured.
    let plain = spawn_app_with(|c| {
        pay_config(c);
        c.payments.test_gateway = false;
    })
    .await;
    let (_, t2, _) = user(&plain, "carl@example.com").await;
    let r = post(
        &plain,
        "/api/v1/wallets/topup",
        &t2,
        &topup_with(json!({})),
        None,
    )
    .await;
    let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        field_errors(&b),
        vec![("method".to_string(), "method_unavailable".to_string())]
    );

    assert_eq!(balance(&app, &token).await, 0);
    assert!(events(&app).is_empty());
    let admin_token = admin(&app).await;
    let r = get_auth(&app, "/api/v1/admin/payments/audit", &admin_token).await;
    assert_eq!(json(r).await["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn idempotency_keys_replay_the_answer_and_refuse_another_body() {
    let app = pay_app().await;
    let (_, token, _) = user(&app, "ida@example.com").await;
    let body = json!({"amount": {"amount": 3000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let r1 = post(&app, "/api/v1/wallets/topup", &token, &body, Some("k-1")).await;
    assert_eq!(r1.status(), StatusCode::CREATED);
    assert!(r1.headers().get("idempotent-replayed").is_none());
    let first = json(r1).await;
    let r2 = post(&app, "/api/v1/wallets/topup", &token, &body, Some("k-1")).await;
    assert_eq!(r2.status(), StatusCode::CREATED);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    assert_eq!(json(r2).await, first);
    assert_eq!(balance(&app, &token).await, 3000);

    let other = json!({"amount": {"amount": 4000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let r = post(&app, "/api/v1/wallets/topup", &token, &other, Some("k-1")).await;
    let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(field_errors(&b)[0].1, "idempotency_key_reused");
    assert_eq!(balance(&app, &token).await, 3000);

    // Keys are per principal: another customer's same key is their own.
    let (_, t2, _) = user(&app, "jon@example.com").await;
    let r = post(&app, "/api/v1/wallets/topup", &t2, &body, Some("k-1")).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_eq!(balance(&app, &t2).await, 3000);

    // A refused request's answer is kept too: the retry gets the same 422.
    let bad = json!({"amount": {"amount": 1, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let r = post(&app, "/api/v1/wallets/topup", &token, &bad, Some("k-2")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(&app, "/api/v1/wallets/topup", &token, &bad, Some("k-2")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["idempotent-replayed"], "true");

    // A malformed key is refused.
    let r = post(
        &app,
        "/api/v1/wallets/topup",
        &token,
        &body,
        Some("has space"),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

    // After 24 hours the key may be used again.
    app.state.clock.advance(time::Duration::hours(25));
    let token =
        crate::users::login(&app, "ida@example.com", crate::users::PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    let r = post(&app, "/api/v1/wallets/topup", &token, &body, Some("k-1")).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_eq!(balance(&app, &token).await, 6000);
}

#[tokio::test]
async fn refunds_never_exceed_what_was_captured() {
    let app = pay_app().await;
    let orders = FakeOrders::install(&app);
    let admin_token = admin(&app).await;
    let (uid, token, _) = user(&app, "rita@example.com").await;
    let p = topup(&app, &token, 5000).await;
    let id = p["payment_id"].as_str().unwrap();
    let refund = |amount: Option<i64>, key: &'static str| {
        let body = match amount {
            Some(a) => {
                json!({"amount": {"amount": a, "currency": "EUR"}, "reason": "customer asked"})
            }
            None => json!({"reason": "customer asked"}),
        };
        let (app, admin_token) = (&app, admin_token.clone());
        async move {
            post(
                app,
                &format!("/api/v1/payments/{id}/refund"),
                &admin_token,
                &body,
                Some(key),
            )
            .await
        }
    };
    // Only admins refund.
    let r = post(
        &app,
        &format!("/api/v1/payments/{id}/refund"),
        &token,
        &json!({"reason": "x"}),
        None,
    )
    .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = refund(Some(2000), "r1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = json(r).await;
    assert_eq!(after["refunded"]["amount"], 2000);
    assert_eq!(balance(&app, &token).await, 3000);
    let r = refund(Some(3001), "r2").await;
    problem(r, StatusCode::CONFLICT, "refund_exceeds_captured").await;
    let r = post(
        &app,
        &format!("/api/v1/payments/{id}/refund"),
        &admin_token,
        &json!({"reason": ""}),
        None,
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    // The rest, by leaving the amount out; then nothing more.
    let r = refund(None, "r3").await;
    assert_eq!(json(r).await["refunded"]["amount"], 5000);
    let r = refund(Some(1), "r4").await;
    problem(r, StatusCode::CONFLICT, "refund_exceeds_captured").await;
    assert_eq!(balance(&app, &token).await, 0);

    // A top-up whose money was spent cannot be refunded to the card.
    let p = topup(&app, &token, 1000).await;
    let order = orders.add(&uid, 800);
    let r = pay_order(&app, &token, order, "wallet").await;
    assert_eq!(json(r).await["status"], "succeeded");
    let r = post(
        &app,
        &format!(
            "/api/v1/payments/{}/refund",
            p["payment_id"].as_str().unwrap()
        ),
        &admin_token,
        &json!({"reason": "x"}),
        None,
    )
    .await;
    problem(r, StatusCode::CONFLICT, "insufficient_funds").await;
    assert_eq!(balance(&app, &token).await, 200);
    // The order payment goes back to the wallet at once, and the order hears of it.
    let order_payment = orders.told.lock().unwrap()[0].1.clone();
    let PaymentOutcome::Succeeded { payment_id, .. } = order_payment else {
        panic!("{order_payment:?}")
    };
    let r = post(
        &app,
        &format!("/api/v1/payments/{payment_id}/refund"),
        &admin_token,
        &json!({"amount": {"amount": 300, "currency": "EUR"}, "reason": "damaged"}),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(balance(&app, &token).await, 500);
    assert!(matches!(
        orders.told.lock().unwrap()[1].1,
        PaymentOutcome::Refunded { .. }
    ));
    let refunds: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.type_name() == "Payment.Refunded")
        .collect();
    assert_eq!(refunds.len(), 3);
    assert_ledger_ok(&app);
}

#[tokio::test]
async fn another_customers_payment_is_not_found() {
    let app = pay_app().await;
    let (_, alice, _) = user(&app, "alice@example.com").await;
    let (_, mallory, _) = user(&app, "mallory@example.com").await;
    let body = json!({"amount": {"amount": 2000, "currency": "EUR"}, "method": "card", "card": card(CONFIRM_CARD)});
    let p = json(post(&app, "/api/v1/wallets/topup", &alice, &body, None).await).await;
    let id = p["payment_id"].as_str().unwrap();
    let r = get_auth(&app, &format!("/api/v1/payments/{id}"), &mallory).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = post(
        &app,
        "/api/v1/payments/confirm",
        &mallory,
        &json!({"payment_id": id, "code": "123456"}),
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = get_auth(&app, "/api/v1/payments/not-an-id", &mallory).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    // Still pending for Alice, who sees it.
    let r = get_auth(&app, &format!("/api/v1/payments/{id}"), &alice).await;
    assert_eq!(json(r).await["status"], "requires_confirmation");
    assert_eq!(balance(&app, &mallory).await, 0);
}

#[tokio::test]
async fn a_hundred_concurrent_wallet_payments_spend_the_balance_exactly_once() {
    let app = pay_app().await;
    let orders = FakeOrders::install(&app);
    let (uid, token, _) = user(&app, "many@example.com").await;
    topup(&app, &token, 1000).await;
    let ids: Vec<Uuid> = (0..100).map(|_| orders.add(&uid, 100)).collect();
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|order| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/api/v1/payments/initiate"),
                token.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"order_id": order, "method": "wallet"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                r.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut succeeded = 0;
    let mut insufficient = 0;
    for t in tasks {
        let p = t.await.unwrap();
        match p["status"].as_str().unwrap() {
            "succeeded" => succeeded += 1,
            "failed" if p["failure_reason"] == "insufficient_funds" => insufficient += 1,
            other => panic!("unexpected {other}: {p}"),
        }
    }
    assert_eq!((succeeded, insufficient), (10, 90));
    assert_eq!(balance(&app, &token).await, 0);
    // Each paid order's money sits in its escrow account.
    let rtx = app.state.store.read().unwrap();
    let paid: Vec<Uuid> = orders
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, o)| o.paid)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(paid.len(), 10);
    for id in paid {
        let b = souk::services::payments::ledger::balance(
            &rtx,
            &souk::services::payments::ledger::Account::OrderEscrow(id),
            Currency::EUR,
        )
        .unwrap();
        assert_eq!(b, eur(100));
    }
    assert_ledger_ok(&app);
}
