//! Crash safety of checkout through the real binary: a shop set up over the API (an admin
//! made on the command line, a vendor, a product with stock, buyers with wallets topped
//! up by card), then a storm of concurrent checkouts SIGKILLed mid-way, twice. After the
//! restart every order that was answered 201 exists exactly once and is paid, reserved
//! stock equals the lines of the open orders, no stock is negative, nothing shipped left
//! on hand, the ledger balances and `souk check` passes.
//!
//! The process helpers mirror `crash.rs`'s (kept private there).

use crate::helpers::client_trusting;
use crate::process::{self, stop};
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";
const STOCK: i64 = 1000;
const BUYERS: usize = 24;
const WRITERS: usize = 8;

const ENV: &[(&str, &str)] = &[
    ("SOUK_PAYMENTS__TEST_GATEWAY", "true"),
    ("SOUK_PAYMENTS__FRAUD__ENABLED", "false"),
];

fn souk(data: &Path) -> Command {
    process::souk(data, ENV)
}

fn start(data: &Path) -> (Child, String) {
    process::serve(souk(data))
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    fn new(data: &Path, url: String) -> Api {
        let pem = std::fs::read(data.join("keys/tls-cert.pem")).expect("certificate written");
        Api {
            client: client_trusting(&pem, |b| b.timeout(Duration::from_secs(20))),
            url,
        }
    }

    /// (status, body); `None` when the server is gone.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut b = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            b = b.bearer_auth(t);
        }
        if let Some(v) = body {
            b = b.json(&v);
        }
        let r = b.send().await.ok()?;
        let status = r.status().as_u16();
        // An answer cut off by the kill was never received: like no answer at all (as the
        // other crash tests treat it), not a 201 without its body.
        let v = r.json().await.ok()?;
        Some((status, v))
    }

    async fn ok(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let (s, v) = self
            .call(method, path, token, Some(body))
            .await
            .expect("server up");
        assert!((200..300).contains(&s), "{path}: {s} {v}");
        v
    }

    async fn login(&self, email: &str) -> String {
        let v = self
            .ok(
                Method::POST,
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn register(&self, email: &str) -> String {
        let v = self
            .ok(
                Method::POST,
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Crash Buyer"}),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }
}

/// The shop: (product id, variant id, buyer emails).
async fn set_up(api: &Api) -> (String, String, Vec<String>) {
    let admin = api.login("root@crash.example").await;
    let owner = api.register("vendor@crash.example").await;
    api.ok(
        Method::POST,
        "/api/v1/admin/vendors",
        Some(&admin),
        json!({"name": "Crash Goods", "owner_user_id": owner}),
    )
    .await;
    let vendor = api.login("vendor@crash.example").await;
    let cat = api
        .ok(
            Method::POST,
            "/api/v1/categories",
            Some(&admin),
            json!({"name": "Tools", "parent": null}),
        )
        .await;
    let p = api
        .ok(
            Method::POST,
            "/api/v1/products",
            Some(&vendor),
            json!({
                "title": "Hammer", "description": "Hits nails.", "category_id": cat["id"],
                "brand": "Acme", "attributes": {}, "status": "active",
                "variants": [{"sku": "HM-1", "options": {}, "price": {"amount": 1000, "currency": "EUR"}, "weight_grams": 500}]
            }),
        )
        .await;
    let (pid, vid) = (
        p["id"].as_str().unwrap().to_string(),
        p["variants"][0]["id"].as_str().unwrap().to_string(),
    );
    let w = api
        .ok(
            Method::POST,
            "/api/v1/vendor/warehouses",
            Some(&vendor),
            json!({"name": "Depot", "code": "W-1"}),
        )
        .await;
    api.ok(
        Method::PUT,
        &format!("/api/v1/inventory/{pid}"),
        Some(&vendor),
        json!({"version": 0, "levels": [{"variant_id": vid, "warehouse_id": w["id"], "on_hand": STOCK}]}),
    )
    .await;
    let mut emails = Vec::new();
    for i in 0..BUYERS {
        let email = format!("buyer{i}@crash.example");
        api.register(&email).await;
        let t = api.login(&email).await;
        let pay = api
            .ok(
                Method::POST,
                "/api/v1/wallets/topup",
                Some(&t),
                json!({"amount": {"amount": 100_000, "currency": "EUR"}, "method": "card",
                       "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}}),
            )
            .await;
        assert_eq!(pay["status"], "succeeded", "{pay}");
        emails.push(email);
    }
    (pid, vid, emails)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_checkout_survives_sigkill_and_no_reservation_leaks() {
    crate::helpers::init_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("test-config.toml"), "").unwrap();
    let mut admin = souk(&data)
        .args(["admin", "create", "--email", "root@crash.example"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(admin.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(admin.wait().unwrap().success(), "souk admin create failed");

    let (child, url) = start(&data);
    let api = Api::new(&data, url);
    let (pid, vid, emails) = set_up(&api).await;
    stop(child);

    // (order id → units) answered 201.
    let acked: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    for _round in 0..2 {
        let (mut child, url) = start(&data);
        let api = Api::new(&data, url);
        let mut tokens = Vec::new();
        for e in &emails {
            tokens.push(api.login(e).await);
        }
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let mine: Vec<String> = tokens.iter().skip(w).step_by(WRITERS).cloned().collect();
            let (api, acked, pid, vid) = (api.clone(), acked.clone(), pid.clone(), vid.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let t = &mine[i % mine.len()];
                    let q = 1 + (i as i64 % 2);
                    let add = json!({"product_id": pid, "variant_id": vid, "quantity": q});
                    let Some((s, _)) = api
                        .call(Method::POST, "/api/v1/cart/items", Some(t), Some(add))
                        .await
                    else {
                        break;
                    };
                    assert!(s == 201 || s == 422, "add answered {s}");
                    let body = json!({"shipping_address": {"name": "Crash Buyer", "line1": "1 Main St",
                        "city": "Berlin", "postal_code": "10115", "country": "DE"}, "payment_method": "wallet"});
                    let Some((s, v)) = api
                        .call(Method::POST, "/api/v1/orders", Some(t), Some(body))
                        .await
                    else {
                        break;
                    };
                    match s {
                        201 => {
                            assert_eq!(v["order"]["status"], "paid", "{v}");
                            let units: i64 = v["order"]["sub_orders"][0]["lines"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|l| l["quantity"].as_i64().unwrap())
                                .sum();
                            let id = v["order"]["id"].as_str().unwrap().to_string();
                            assert!(acked.lock().unwrap().insert(id, units).is_none());
                        }
                        409 => {} // out of stock, or a cart changed under a racing add
                        other => panic!("checkout answered {other}: {v}"),
                    }
                }
            }));
        }
        let pause = rand::rng().random_range(1000..2500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL sent");
        child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few checkouts acknowledged to mean anything: {}",
        acked.len()
    );

    // Restarted: every acknowledged order is there once, paid, with its units.
    let (child, url) = start(&data);
    let api = Api::new(&data, url);
    let admin = api.login("root@crash.example").await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/admin/orders?limit=100&cursor={c}"),
            None => "/api/v1/admin/orders?limit=100".to_string(),
        };
        let (s, page) = api
            .call(Method::GET, &path, Some(&admin), None)
            .await
            .unwrap();
        assert_eq!(s, 200, "{page}");
        for o in page["items"].as_array().unwrap() {
            *seen
                .entry(o["id"].as_str().unwrap().to_string())
                .or_default() += 1;
            if let Some(units) = acked.get(o["id"].as_str().unwrap()) {
                assert_eq!(o["status"], "paid", "{o}");
                let got: i64 = o["sub_orders"][0]["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["quantity"].as_i64().unwrap())
                    .sum();
                assert_eq!(got, *units);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    for id in acked.keys() {
        assert_eq!(seen.get(id), Some(&1), "order {id} lost or listed twice");
    }
    stop(child);

    // The store itself: reservations are exactly the open orders' lines.
    let out = souk(&data).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "souk check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let config = crate::helpers::test_config(&data);
    let app = souk::app::App::open(config).expect("store opens after the crash");
    let rtx = app.state.store.read().unwrap();
    let orders = souk::services::orders::store::all_orders(&rtx, None).unwrap();
    assert!(orders.len() >= acked.len());
    eprintln!(
        "{} checkouts acknowledged, {} orders stored",
        acked.len(),
        orders.len()
    );
    let inv = souk::services::catalog::inventory::inventory(&rtx, pid.parse().unwrap()).unwrap();
    let mut open_units = 0;
    for o in &orders {
        use souk::services::catalog::model::ReservationStatus;
        use souk::services::orders::state::Status;
        for s in &o.sub_orders {
            let r = souk::services::catalog::inventory::reservation(&rtx, s.reservation_id)
                .unwrap()
                .expect("every sub-order's reservation exists");
            let open = matches!(s.status, Status::PendingPayment | Status::Paid);
            assert_eq!(
                r.status == ReservationStatus::Held,
                open,
                "{:?} with a {:?} reservation",
                s.status,
                r.status
            );
            if open {
                open_units += r.lines.iter().map(|l| l.quantity).sum::<i64>();
            }
        }
    }
    let (on_hand, reserved): (i64, i64) = inv
        .levels
        .iter()
        .fold((0, 0), |(a, b), l| (a + l.on_hand, b + l.reserved));
    assert!(
        inv.levels
            .iter()
            .all(|l| l.on_hand >= 0 && l.available() >= 0)
    );
    assert_eq!(on_hand, STOCK, "nothing shipped, so nothing left on hand");
    assert_eq!(
        reserved, open_units,
        "reservations = the open orders' lines"
    );
    let mut report = souk::check::Report::default();
    souk::services::payments::ledger::verify(&rtx, &mut report).unwrap();
    assert!(report.ok(), "{report}");
}
