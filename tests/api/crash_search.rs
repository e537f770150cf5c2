//! The search index through the real binary and SIGKILL: products are created while the
//! indexer works, souk is killed at random moments over several rounds, then restarted.
//! The index must converge to the catalog: every active product exactly once.

use crate::process::{self, client, stop};
use rand::Rng;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn souk(data: &Path) -> Command {
    process::souk(data, &[])
}

fn start(data: &Path) -> (Child, String) {
    process::serve(souk(data))
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, url: &str, email: &str) -> String {
    let (s, v) = call(
        client,
        reqwest::Method::POST,
        &format!("{url}/api/v1/auth/login"),
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "login {email}: {v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// An admin (made by the CLI while souk is stopped), a vendor and a category.
async fn set_up(data: &Path) -> String {
    let mut admin = souk(data)
        .args(["admin", "create", "--email", "root@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(admin.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(admin.wait().unwrap().success(), "souk admin create");
    let (child, url) = start(data);
    let c = client(data);
    let admin = login(&c, &url, "root@example.com").await;
    let (s, v) = call(
        &c,
        reqwest::Method::POST,
        &format!("{url}/api/v1/auth/register"),
        None,
        Some(json!({"email": "v@example.com", "password": PASSWORD, "name": "Vendor"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &c,
        reqwest::Method::POST,
        &format!("{url}/api/v1/admin/vendors"),
        Some(&admin),
        Some(json!({"name": "Crash Lamps", "owner_user_id": v["id"]})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &c,
        reqwest::Method::POST,
        &format!("{url}/api/v1/categories"),
        Some(&admin),
        Some(json!({"name": "Lamps", "parent": null})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let category = v["id"].as_str().unwrap().to_string();
    stop(child);
    category
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_converges_to_the_catalog_after_sigkill_during_indexing() {
    crate::helpers::init_process();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("test-config.toml"), "").unwrap();
    let category = set_up(&data).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    for round in 0..3 {
        let (mut child, url) = start(&data);
        let c = client(&data);
        let vendor = login(&c, &url, "v@example.com").await;
        let mut writers = Vec::new();
        for w in 0..6 {
            let (c, url, vendor, category, acked) = (
                c.clone(),
                url.clone(),
                vendor.clone(),
                category.clone(),
                acked.clone(),
            );
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let body = json!({
                        "title": format!("Crash Lamp r{round} w{w} n{i}"),
                        "description": "Survives a kill.",
                        "category_id": category,
                        "brand": "Acme",
                        "status": "active",
                        "attributes": {"material": "brass"},
                        "variants": [{"sku": format!("CL-{round}-{w}-{i}"),
                            "options": {"size": "M"}, "weight_grams": 250,
                            "price": {"amount": 1000 + i, "currency": "EUR"}}],
                    });
                    let sent = c
                        .post(format!("{url}/api/v1/products"))
                        .bearer_auth(&vendor)
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            if let Some(id) = v["id"].as_str() {
                                acked.lock().unwrap().push(id.to_string());
                            }
                        }
                        Ok(r) => panic!("create answered {}", r.status()),
                        Err(_) => break, // the server is gone
                    }
                }
            }));
        }
        let pause = rand::rng().random_range(400..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().expect("SIGKILL sent");
        child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "too few products made: {}", acked.len());

    let (child, url) = start(&data);
    let c = client(&data);
    let admin = login(&c, &url, "root@example.com").await;
    // The catalog's count of active products (acknowledged ones and any committed just
    // before a kill), independently of the index.
    let (s, listed) = call(
        &c,
        reqwest::Method::GET,
        &format!("{url}/api/v1/products?limit=1&include_total=true"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{listed}");
    let catalog = listed["total"].as_u64().unwrap();
    assert!(
        catalog >= acked.len() as u64,
        "an acknowledged product was lost"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let (s, v) = call(
            &c,
            reqwest::Method::GET,
            &format!("{url}/api/v1/admin/search/stats"),
            Some(&admin),
            None,
        )
        .await;
        if s == 200 && v["documents"] == catalog {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index did not converge to {catalog} products: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        stats["distinct_ids"], stats["documents"],
        "a product indexed twice"
    );
    // Every acknowledged product is findable by its own title.
    let (s, v) = call(
        &c,
        reqwest::Method::GET,
        &format!("{url}/api/v1/search?q=%22crash%20lamp%22&limit=1"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["total"].as_u64().unwrap(), catalog);
    stop(child);
}
