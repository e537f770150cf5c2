//! Payments beyond the basics: saved methods (and no card number anywhere on disk or in
//! the logs), the hosted gateway against a local provider peer, cash on delivery, fraud
//! review and blocking, the circuit breaker, `souk check` on a tampered audit chain.

use crate::helpers::{TestApp, spawn_app_with};
use crate::payments::*;
use crate::users::{admin, get_auth, json, problem, user};
use axum::extract::{Query, State};
use reqwest::StatusCode;
use serde_json::{Value, json};
use souk::services::payments::gateway::sign_callback;
use souk::services::payments::model::PaymentOutcome;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A tracing writer into a shared buffer, to read back what was logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn saved_methods_are_sealed_and_no_card_number_is_stored_or_logged() {
    let logs = Captured::default();
    let sink = logs.clone();
    // The server's own line format, so what is checked is what would be written.
    let subscriber = tracing_subscriber::fmt()
        .event_format(souk::logging::LineFormat { json: true })
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = pay_app().await;
    let (_, token, _) = user(&app, "sam@example.com").await;
    let (_, other, _) = user(&app, "oscar@example.com").await;
    let r = post(
        &app,
        "/api/v1/payment-methods",
        &token,
        &json!({"card": card(OK_CARD)}),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = json(r).await;
    assert_eq!(
        (m["brand"].as_str(), m["last4"].as_str()),
        (Some("visa"), Some("4242"))
    );
    assert!(
        m.get("token").is_none() && m.get("fingerprint").is_none(),
        "{m}"
    );
    let mid = m["id"].as_str().unwrap().to_string();

    // Paying with the saved method, and saving another while paying.
    let r = post(
        &app,
        "/api/v1/wallets/topup",
        &token,
        &json!({"amount": {"amount": 1500, "currency": "EUR"}, "method": "card", "payment_method_id": mid}),
        None,
    )
    .await;
    let p = json(r).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["payment_method_id"], mid.as_str());
    let r = post(
        &app,
        "/api/v1/wallets/topup",
        &token,
        &json!({"amount": {"amount": 500, "currency": "EUR"}, "method": "card", "card": card("5555555555554444"), "save_method": true}),
        None,
    )
    .await;
    assert_eq!(json(r).await["status"], "succeeded");
    let list = json(get_auth(&app, "/api/v1/payment-methods", &token).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(balance(&app, &token).await, 2000);

    // Someone else can neither use nor delete it.
    let r = post(
        &app,
        "/api/v1/wallets/topup",
        &other,
        &json!({"amount": {"amount": 1500, "currency": "EUR"}, "method": "card", "payment_method_id": mid}),
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = crate::users::send_auth(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/payment-methods/{mid}"),
        &other,
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = crate::users::send_auth(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/payment-methods/{mid}"),
        &token,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list = json(get_auth(&app, "/api/v1/payment-methods", &token).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    for n in [DECLINED_CARD, CONFIRM_CARD] {
        let body = json!({"amount": {"amount": 700, "currency": "EUR"}, "method": "card", "card": card(n)});
        post(&app, "/api/v1/wallets/topup", &token, &body, None).await;
    }
    let dir = app.stop().await;
    for number in [OK_CARD, "5555555555554444", DECLINED_CARD, CONFIRM_CARD] {
        assert_eq!(
            files_containing(dir.path(), number.as_bytes()),
            Vec::<String>::new(),
            "{number} on disk"
        );
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        assert!(!text.contains(number), "{number} in the logs");
    }
    // Gateway tokens are sealed too: none appears in clear.
    assert_eq!(
        files_containing(dir.path(), b"tok_test_"),
        Vec::<String>::new()
    );
    assert!(
        !logs.0.lock().unwrap().is_empty(),
        "the capture saw the requests"
    );
}

const SECRET: &str = "hosted-gateway-shared-secret-0123456789";

/// The provider peer: a page that, when the buyer arrives, signs and sends the callback.
#[derive(Clone, Default)]
struct Peer {
    /// A client trusting Souk's certificate, and where to send callbacks.
    target: Arc<Mutex<Option<(reqwest::Client, String)>>>,
}

async fn provider_page(
    State(peer): State<Peer>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    let body = json!({
        "event_id": format!("evt-{}", q["session"]),
        "session_id": q["session"],
        "status": "succeeded",
        "amount": {"amount": q["amount"].parse::<i64>().unwrap(), "currency": q["currency"]},
    })
    .to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let (client, url) = peer.target.lock().unwrap().clone().unwrap();
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("Souk-Timestamp", ts.to_string())
        .header(
            "Souk-Signature",
            format!("v1={}", sign_callback(SECRET, ts, body.as_bytes())),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    format!("callback answered {}", r.status().as_u16())
}

async fn start_peer() -> (String, Peer) {
    crate::helpers::init_process();
    let peer = Peer::default();
    let app = axum::Router::new()
        .route("/pay", axum::routing::get(provider_page))
        .with_state(peer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/pay"), peer)
}

async fn callback(app: &TestApp, body: &Value, ts: i64, secret: &str) -> reqwest::Response {
    let raw = body.to_string();
    app.request(reqwest::Method::POST, "/api/v1/payments/hosted/callback")
        .header("content-type", "application/json")
        .header("Souk-Timestamp", ts.to_string())
        .header("Souk-Signature", sign_callback(secret, ts, raw.as_bytes()))
        .body(raw)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn hosted_gateway_completes_on_a_signed_callback_and_refuses_forgeries() {
    let (peer_url, peer) = start_peer().await;
    let url = peer_url.clone();
    let app = spawn_app_with(move |c| {
        pay_config(c);
        c.payments.hosted_url = url;
        c.payments.hosted_secret = Some(souk::config::Secret::new(SECRET));
    })
    .await;
    *peer.target.lock().unwrap() = Some((
        app.client.clone(),
        app.url("/api/v1/payments/hosted/callback"),
    ));
    let (_, token, _) = user(&app, "hana@example.com").await;
    let body = json!({"amount": {"amount": 4200, "currency": "EUR"}, "method": "hosted"});
    let p = json(post(&app, "/api/v1/wallets/topup", &token, &body, None).await).await;
    assert_eq!(p["status"], "requires_redirect");
    let redirect = p["next_action"]["url"].as_str().unwrap().to_string();
    assert!(redirect.starts_with(&peer_url), "{redirect}");
    let id = p["payment_id"].as_str().unwrap().to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let good = json!({"event_id": "evt-x", "session_id": id, "status": "succeeded"});

    // Forged, stale and malformed callbacks are refused and change nothing.
    let r = callback(&app, &good, now, "not-the-secret-not-the-secret-not-the").await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = callback(&app, &good, now - 301, SECRET).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .request(reqwest::Method::POST, "/api/v1/payments/hosted/callback")
        .header("content-type", "application/json")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong_amount = json!({"event_id": "evt-y", "session_id": id, "status": "succeeded", "amount": {"amount": 1, "currency": "EUR"}});
    let r = callback(&app, &wrong_amount, now, SECRET).await;
    problem(r, StatusCode::CONFLICT, "amount_mismatch").await;
    assert_eq!(balance(&app, &token).await, 0);
    let r = get_auth(&app, &format!("/api/v1/payments/{id}"), &token).await;
    assert_eq!(json(r).await["status"], "requires_redirect");

    // The buyer goes to the provider's page; the provider calls back.
    let page = app
        .client
        .get(&redirect)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page, "callback answered 200");
    let r = get_auth(&app, &format!("/api/v1/payments/{id}"), &token).await;
    assert_eq!(json(r).await["status"], "succeeded");
    assert_eq!(balance(&app, &token).await, 4200);
    // The same provider event again is refused; another event for a finished payment too.
    let replay = json!({"event_id": format!("evt-{id}"), "session_id": id, "status": "succeeded"});
    let r = callback(&app, &replay, now, SECRET).await;
    problem(r, StatusCode::CONFLICT, "duplicate_event").await;
    let r = callback(&app, &good, now, SECRET).await;
    problem(r, StatusCode::CONFLICT, "not_awaiting_provider").await;
    assert_eq!(balance(&app, &token).await, 4200);
    assert_ledger_ok(&app);
}

#[tokio::test]
async fn cash_on_delivery_waits_for_an_admin() {
    let app = pay_app().await;
    let orders = FakeOrders::install(&app);
    let admin_token = admin(&app).await;
    let (uid, token, _) = user(&app, "cody@example.com").await;
    let order = orders.add(&uid, 2500);
    let r = pay_order(&app, &token, order, "cod").await;
    let p = json(r).await;
    assert_eq!(p["status"], "awaiting_cash");
    assert_eq!(p["next_action"]["type"], "await_cash");
    assert!(matches!(
        orders.told.lock().unwrap()[0].1,
        PaymentOutcome::Deferred { .. }
    ));
    let id = p["payment_id"].as_str().unwrap();
    // The customer cannot mark their own payment paid.
    let r = post(
        &app,
        &format!("/api/v1/payments/{id}/mark-paid"),
        &token,
        &json!({}),
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = post(
        &app,
        &format!("/api/v1/payments/{id}/mark-paid"),
        &admin_token,
        &json!({}),
        None,
    )
    .await;
    assert_eq!(json(r).await["status"], "succeeded");
    let r = post(
        &app,
        &format!("/api/v1/payments/{id}/mark-paid"),
        &admin_token,
        &json!({}),
        None,
    )
    .await;
    problem(r, StatusCode::CONFLICT, "not_awaiting_cash").await;
    // A top-up cannot be cash on delivery.
    let r = post(
        &app,
        "/api/v1/wallets/topup",
        &token,
        &json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "cod"}),
        None,
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_ledger_ok(&app);
}

#[tokio::test]
async fn with_the_fraud_rules_off_payments_are_neither_held_nor_scored() {
    let app = spawn_app_with(|c| {
        pay_config(c);
        c.payments.fraud.enabled = false;
        c.payments.fraud.max_per_hour = 2;
        c.payments.fraud.review_score = 40;
    })
    .await;
    let admin_token = admin(&app).await;
    let (_, token, _) = user(&app, "olga@example.com").await;
    let body = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let mut last = json!(null);
    for _ in 0..3 {
        last = json(post(&app, "/api/v1/wallets/topup", &token, &body, None).await).await;
        assert_eq!(last["status"], "succeeded");
    }
    assert_eq!(balance(&app, &token).await, 3000);
    let id = last["payment_id"].as_str().unwrap();
    let seen = json(get_auth(&app, &format!("/api/v1/payments/{id}"), &admin_token).await).await;
    assert_eq!(seen["status"], "succeeded");
    assert!(seen.get("fraud").is_none(), "no verdict kept: {seen}");
    let queue = json(get_auth(&app, "/api/v1/admin/payments/review", &admin_token).await).await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 0);
    assert_ledger_ok(&app);
}

#[tokio::test]
async fn fraud_rules_hold_payments_for_review_or_block_them() {
    let app = spawn_app_with(|c| {
        pay_config(c);
        c.payments.fraud.enabled = true;
        c.payments.fraud.max_per_hour = 2;
        c.payments.fraud.review_score = 40;
        c.payments.fraud.block_score = 120;
    })
    .await;
    let admin_token = admin(&app).await;
    let (_, token, _) = user(&app, "fred@example.com").await;
    topup(&app, &token, 1000).await;
    topup(&app, &token, 1000).await;
    // The third within the hour is held.
    let body = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let held = json(post(&app, "/api/v1/wallets/topup", &token, &body, None).await).await;
    assert_eq!(held["status"], "in_review");
    assert!(
        held.get("fraud").is_none(),
        "customers do not see the verdict"
    );
    let second = json(post(&app, "/api/v1/wallets/topup", &token, &body, None).await).await;
    assert_eq!(second["status"], "in_review");
    assert_eq!(balance(&app, &token).await, 2000);
    let r = get_auth(&app, "/api/v1/admin/payments/review", &token).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let queue = json(get_auth(&app, "/api/v1/admin/payments/review", &admin_token).await).await;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["fraud"]["rules"]
            .as_array()
            .unwrap()
            .contains(&json!("velocity_hour_user"))
    );
    assert!(items[0]["fraud"]["score"].as_u64().unwrap() >= 40);
    // Approving charges the card then; rejecting fails the payment.
    let r = post(
        &app,
        &format!(
            "/api/v1/admin/payments/{}/review",
            held["payment_id"].as_str().unwrap()
        ),
        &admin_token,
        &json!({"decision": "approve", "note": "known customer"}),
        None,
    )
    .await;
    assert_eq!(json(r).await["status"], "succeeded");
    let r = post(
        &app,
        &format!(
            "/api/v1/admin/payments/{}/review",
            second["payment_id"].as_str().unwrap()
        ),
        &admin_token,
        &json!({"decision": "reject"}),
        None,
    )
    .await;
    let rejected = json(r).await;
    assert_eq!(rejected["failure_reason"], "rejected_in_review");
    let r = post(
        &app,
        &format!(
            "/api/v1/admin/payments/{}/review",
            second["payment_id"].as_str().unwrap()
        ),
        &admin_token,
        &json!({"decision": "approve"}),
        None,
    )
    .await;
    problem(r, StatusCode::CONFLICT, "not_in_review").await;
    assert_eq!(balance(&app, &token).await, 3000);
    let queue = json(get_auth(&app, "/api/v1/admin/payments/review", &admin_token).await).await;
    assert!(queue["items"].as_array().unwrap().is_empty());

    // Blocking: the same rules over a lower block score.
    let strict = spawn_app_with(|c| {
        pay_config(c);
        c.payments.fraud.enabled = true;
        c.payments.fraud.max_per_hour = 1;
        c.payments.fraud.review_score = 30;
        c.payments.fraud.block_score = 40;
    })
    .await;
    let (_, t2, _) = user(&strict, "gina@example.com").await;
    topup(&strict, &t2, 1000).await;
    let p = json(post(&strict, "/api/v1/wallets/topup", &t2, &body, None).await).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failure_reason"], "fraud_suspected");
    let failed: Vec<_> = events(&strict)
        .into_iter()
        .filter(|e| e.type_name() == "Payment.Failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        serde_json::to_string(&failed[0])
            .unwrap()
            .contains("fraud_suspected")
    );
    assert_eq!(balance(&strict, &t2).await, 1000);
    // The audit trail records the decisions.
    let trail =
        json(get_auth(&app, "/api/v1/admin/payments/audit?limit=200", &admin_token).await).await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "payment.initiated",
        "payment.captured",
        "payment.held_for_review",
        "review.approved",
        "review.rejected",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn the_breaker_opens_after_five_gateway_failures_and_recovers() {
    let app = pay_app().await;
    let (_, token, _) = user(&app, "bree@example.com").await;
    let broken = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(BROKEN_GATEWAY_CARD)});
    for _ in 0..5 {
        let r = post(&app, "/api/v1/wallets/topup", &token, &broken, None).await;
        problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    let good = json!({"amount": {"amount": 1000, "currency": "EUR"}, "method": "card", "card": card(OK_CARD)});
    let r = post(&app, "/api/v1/wallets/topup", &token, &good, None).await;
    assert!(r.headers().get("retry-after").is_some());
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let initiated = events(&app)
        .iter()
        .filter(|e| e.type_name() == "Payment.Initiated")
        .count();
    assert_eq!(
        initiated, 5,
        "refused while open, before anything is recorded"
    );
    app.state.clock.advance(time::Duration::seconds(61));
    let r = post(&app, "/api/v1/wallets/topup", &token, &good, None).await;
    assert_eq!(json(r).await["status"], "succeeded");
    assert_eq!(balance(&app, &token).await, 1000);
}

#[tokio::test]
async fn souk_check_names_the_first_tampered_audit_entry() {
    let app = pay_app().await;
    let (_, token, _) = user(&app, "tess@example.com").await;
    topup(&app, &token, 1000).await;
    topup(&app, &token, 2000).await;
    let dir = app.stop().await;
    let run_check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_souk"))
            .arg("--data")
            .arg(dir.path())
            .arg("check")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let ok = run_check();
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("payments audit: chain of"), "{out}");
    assert!(out.contains("journal entries balance"), "{out}");
    {
        let db = redb::Database::open(dir.path().join("souk.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(souk::store::tables::PAYMENT_AUDIT_SEQ_TO_ENTRY)
                .unwrap();
            let raw = redb::ReadableTable::get(&t, 3)
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let mut e: Value = serde_json::from_slice(&raw).unwrap();
            e["actor"] = json!("user:someone-else");
            t.insert(3, serde_json::to_vec(&e).unwrap().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let bad = run_check();
    let out = String::from_utf8_lossy(&bad.stdout).to_string();
    assert!(!bad.status.success(), "{out}");
    assert!(out.contains("chain broken at entry 3"), "{out}");
}
