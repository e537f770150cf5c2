//! Money across `kill -9`: buyers top their wallets up by test card and pay orders from
//! them, many at once, while the real binary is SIGKILLed at random moments over several
//! rounds. After a restart every payment that was acknowledged (2xx) is there with its
//! journal entries in the buyer's wallet history, every wallet's history sums to its
//! balance, and `souk check` (ledger balances, every journal, the audit chain) passes.

use crate::helpers::client_trusting;
use crate::orders::Shop;
use crate::process::{self, stop};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OK_CARD: &str = "4242424242424242";

const ENV: &[(&str, &str)] = &[
    ("SOUK_PAYMENTS__TEST_GATEWAY", "true"),
    // Hundreds of payments a minute from one address would trip the velocity rules;
    // this test is about durability.
    ("SOUK_PAYMENTS__FRAUD__ENABLED", "false"),
];

fn souk(data: &Path) -> Command {
    process::souk(data, ENV)
}

fn start(data: &Path) -> (Child, String) {
    process::serve(souk(data))
}

/// A payment the server acknowledged: who paid, its id and its journal entries.
#[derive(Debug, Clone)]
struct Acked {
    buyer: usize,
    payment: String,
    journal: Vec<String>,
    order: Option<String>,
}

fn acked_payment(buyer: usize, p: &Value, order: Option<String>) -> Option<Acked> {
    if p["status"] != "succeeded" {
        return None;
    }
    Some(Acked {
        buyer,
        payment: p["payment_id"].as_str()?.to_string(),
        journal: p["journal"]
            .as_array()?
            .iter()
            .filter_map(|j| j.as_str().map(str::to_string))
            .collect(),
        order,
    })
}

/// One buyer's loop until the server goes away: a card top-up, then an order paid from
/// the wallet, each with its own Idempotency-Key. Returns when a request fails to connect.
async fn buyer_loop(
    client: reqwest::Client,
    url: String,
    token: String,
    buyer: usize,
    round: usize,
    item: (String, String),
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    for i in 0.. {
        let key = format!("r{round}b{buyer}i{i}");
        let topup = client
            .post(format!("{url}/api/v1/wallets/topup"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("{key}-topup"))
            .json(&json!({
                "amount": {"amount": 5000, "currency": "EUR"},
                "method": "card",
                "card": {"number": OK_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            }))
            .send()
            .await;
        let Ok(r) = topup else { return };
        let status = r.status();
        assert!(!status.is_server_error(), "top-up answered {status}");
        if status == StatusCode::CREATED {
            let Ok(p) = r.json::<Value>().await else {
                return;
            };
            let a = acked_payment(buyer, &p, None);
            assert!(a.is_some(), "a test-card top-up succeeds: {p}");
            acked.lock().unwrap().extend(a);
        }

        let add = client
            .post(format!("{url}/api/v1/cart/items"))
            .bearer_auth(&token)
            .json(&json!({"product_id": item.0, "variant_id": item.1, "quantity": 1}))
            .send()
            .await;
        let Ok(r) = add else { return };
        assert!(
            !r.status().is_server_error(),
            "cart answered {}",
            r.status()
        );
        let order = client
            .post(format!("{url}/api/v1/orders"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("{key}-order"))
            .json(
                &json!({"shipping_address": crate::orders::address(), "payment_method": "wallet"}),
            )
            .send()
            .await;
        let Ok(r) = order else { return };
        let status = r.status();
        assert!(!status.is_server_error(), "checkout answered {status}");
        if status == StatusCode::CREATED {
            let Ok(a) = r.json::<Value>().await else {
                return;
            };
            let order = a["order"]["id"].as_str().map(str::to_string);
            assert!(order.is_some(), "{a}");
            if let Some(p) = acked_payment(buyer, &a["payment"], order.clone()) {
                acked.lock().unwrap().push(p);
            } else {
                // An order whose payment did not succeed is still an acknowledged order.
                acked.lock().unwrap().push(Acked {
                    buyer,
                    payment: String::new(),
                    journal: Vec::new(),
                    order,
                });
            }
        }
    }
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Every journal id in a buyer's wallet history, and the sum of its amounts.
async fn wallet_history(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (HashSet<String>, i64) {
    let mut ids = HashSet::new();
    let mut sum = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("{url}/api/v1/wallets/transactions?limit=100&cursor={c}"),
            None => format!("{url}/api/v1/wallets/transactions?limit=100"),
        };
        let (s, v) = get(client, &page, token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for t in v["items"].as_array().unwrap() {
            ids.insert(t["journal_id"].as_str().unwrap().to_string());
            sum += t["amount"]["amount"].as_i64().unwrap();
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (ids, sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_payments_survive_sigkill_and_the_ledger_checks() {
    // A shop with stock for every order this test can place, set up in-process, then
    // handed to the real binary.
    let shop = Shop::with(1_000_000, |c| {
        c.payments.test_gateway = true;
        c.payments.fraud.enabled = false;
    })
    .await;
    let mut tokens = Vec::new();
    for b in 0..8 {
        let (_, token) = shop.buyer(&format!("buyer{b}@crash.example"), 0).await;
        tokens.push(token);
    }
    let item = shop.knife.clone();
    let dir = shop.m.app.stop().await;
    let data = dir.path().to_path_buf();
    std::fs::write(data.join("test-config.toml"), "").unwrap();
    let pem = std::fs::read(data.join("keys/tls-cert.pem")).expect("certificate written");
    let client = client_trusting(&pem, |b| b.timeout(Duration::from_secs(20)));
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();

    for round in 0..3 {
        let (mut child, url) = start(&data);
        let mut tasks = Vec::new();
        for (b, token) in tokens.iter().enumerate() {
            tasks.push(tokio::spawn(buyer_loop(
                client.clone(),
                url.clone(),
                token.clone(),
                b,
                round,
                item.clone(),
                acked.clone(),
            )));
        }
        let pause = rand::rng().random_range(700..2000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL sent");
        child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    let payments = acked.iter().filter(|a| !a.payment.is_empty()).count();
    let orders = acked.iter().filter(|a| a.order.is_some()).count();
    eprintln!("acknowledged before the kills: {payments} payments, {orders} orders");
    assert!(
        payments > 10,
        "too few payments acknowledged to mean anything: {payments}"
    );

    let (child, url) = start(&data);
    for (b, token) in tokens.iter().enumerate() {
        let (history, sum) = wallet_history(&client, &url, token).await;
        let (s, bal) = get(&client, &format!("{url}/api/v1/wallets/balance"), token).await;
        assert_eq!(s, StatusCode::OK);
        let balance = bal["balance"]["amount"].as_i64().unwrap();
        assert_eq!(balance, sum, "buyer {b}: the history sums to the balance");
        assert!(balance >= 0, "buyer {b}: a wallet never goes below zero");
        for a in acked.iter().filter(|a| a.buyer == b) {
            if let Some(order) = &a.order {
                let (s, o) = get(&client, &format!("{url}/api/v1/orders/{order}"), token).await;
                assert_eq!(s, StatusCode::OK, "acknowledged order {order} was lost");
                if !a.payment.is_empty() {
                    assert_eq!(o["status"], "paid", "order {order} lost its payment: {o}");
                }
            }
            if a.payment.is_empty() {
                continue;
            }
            let (s, p) = get(
                &client,
                &format!("{url}/api/v1/payments/{}", a.payment),
                token,
            )
            .await;
            assert_eq!(
                s,
                StatusCode::OK,
                "acknowledged payment {} was lost",
                a.payment
            );
            assert_eq!(p["status"], "succeeded", "{p}");
            let journal: Vec<String> = p["journal"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j.as_str().unwrap().to_string())
                .collect();
            assert_eq!(journal, a.journal, "payment {} journal changed", a.payment);
            assert!(
                journal.iter().any(|j| history.contains(j)),
                "payment {}: no journal entry in the wallet history",
                a.payment
            );
        }
    }
    stop(child);

    let out = souk(&data).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "souk check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
