//! Search through HTTP on a small hand-made catalog with known answers: typos, prefixes,
//! phrases and exclusions, filters, facet counts checked against the catalog, changes and
//! suspensions reaching the index, restart convergence, reindex under load, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use crate::catalog::{Market, product_body};
use crate::helpers::{TestApp, spawn_app_in};
use crate::users::{self, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::log::relay::RelayHandle;
use souk::services::search::IndexerHandle;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Polls `f` until it returns `Some` (at most 10 s); the condition, not the wait, is what
/// a test asserts.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// A product as the test made it, to count facets independently of the engine.
#[derive(Clone)]
pub struct Made {
    pub id: String,
    pub title: &'static str,
    pub brand: &'static str,
    pub category: String,
    pub vendor: String,
    pub price: i64,
    pub color: &'static str,
    pub active: bool,
}

pub struct Shop {
    pub m: Market,
    pub electronics: String,
    pub phones: String,
    pub audio: String,
    pub made: Vec<Made>,
    pub relay: Option<RelayHandle>,
    pub indexer: Option<IndexerHandle>,
}

/// Starts the outbox relay and the search indexer of a test app (spawn_app starts no
/// background workers).
pub fn workers(app: &TestApp) -> (RelayHandle, IndexerHandle) {
    let relay = souk::log::relay::spawn(app.state.store.clone(), app.state.log.clone()).unwrap();
    let indexer = souk::services::search::start(&app.state).unwrap();
    (relay, indexer)
}

impl Shop {
    pub async fn new() -> Shop {
        let m = Market::new().await;
        let (relay, indexer) = workers(&m.app);
        let electronics = m.category("Electronics", None).await;
        let phones = m.category("Phones", Some(&electronics)).await;
        let audio = m.category("Audio", Some(&electronics)).await;
        let mut s = Shop {
            m,
            electronics,
            phones,
            audio,
            made: Vec::new(),
            relay: Some(relay),
            indexer: Some(indexer),
        };
        let (phones, audio, knives, garden) = (
            s.phones.clone(),
            s.audio.clone(),
            s.m.knives.clone(),
            s.m.garden.clone(),
        );
        let a = s.m.vendor_a.clone();
        let b = s.m.vendor_b.clone();
        let rows: [(
            &str,
            &'static str,
            &'static str,
            &str,
            i64,
            &'static str,
            bool,
        ); 10] = [
            (
                &a,
                "Apple iPhone 15 Pro",
                "Apple",
                &phones,
                99900,
                "black",
                true,
            ),
            (
                &a,
                "Samsung Galaxy S24",
                "Samsung",
                &phones,
                79900,
                "black",
                true,
            ),
            (
                &a,
                "JBL Flip Bluetooth Speaker",
                "JBL",
                &audio,
                12900,
                "blue",
                true,
            ),
            (
                &a,
                "Sony Bluetooth Headphones",
                "Sony",
                &audio,
                19900,
                "black",
                true,
            ),
            (
                &a,
                "Bose Portable Speaker",
                "Bose",
                &audio,
                24900,
                "white",
                true,
            ),
            (&a, "Chef Knife", "Acme", &knives, 4900, "steel", true),
            (&a, "Bread Knife", "Acme", &knives, 2900, "black", true),
            (&a, "Garden Hose", "GreenCo", &garden, 1900, "green", true),
            (
                &a,
                "Hidden iPhone Case",
                "Apple",
                &phones,
                1500,
                "black",
                false,
            ),
            (
                &b,
                "Beta Bluetooth Speaker Mini",
                "JBL",
                &audio,
                5900,
                "red",
                true,
            ),
        ];
        for (i, (token, title, brand, cat, price, color, active)) in rows.into_iter().enumerate() {
            let mut body = product_body(title, cat, &format!("SKU-{i}"), price);
            body["brand"] = json!(brand);
            body["attributes"] = json!({"color": color});
            body["description"] = json!(format!("{title}: a {color} product by {brand}."));
            if active {
                body["status"] = json!("active");
            }
            let p = s.m.product(token, body).await;
            let vendor = if token == a {
                s.m.vendor_a_id.clone()
            } else {
                s.m.vendor_b_id.clone()
            };
            s.made.push(Made {
                id: p["id"].as_str().unwrap().to_string(),
                title,
                brand,
                category: cat.to_string(),
                vendor,
                price,
                color,
                active,
            });
        }
        let want = s.made.iter().filter(|p| p.active).count() as u64;
        s.wait_total("", want).await;
        s
    }

    pub async fn search(&self, query: &str) -> Value {
        let r = self.m.app.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        json(r).await
    }

    pub async fn wait_total(&self, q: &str, total: u64) -> Value {
        eventually(&format!("{total} hits for `{q}`"), || async {
            let r = self.m.app.get(&format!("/api/v1/search?q={q}")).await;
            if r.status() != StatusCode::OK {
                return None;
            }
            let v = json(r).await;
            (v["total"] == total).then_some(v)
        })
        .await
    }

    pub fn active(&self) -> impl Iterator<Item = &Made> {
        self.made.iter().filter(|p| p.active)
    }
    /// Vendor A renames its Garden Hose to "Garden Watering Hose"; its id.
    pub async fn retitle_hose(&self) -> String {
        let hose = self
            .made
            .iter()
            .find(|p| p.title == "Garden Hose")
            .unwrap()
            .id
            .clone();
        let r = self
            .m
            .send(
                Method::PUT,
                &format!("/api/v1/products/{hose}"),
                &self.m.vendor_a,
                Some(json!({"title": "Garden Watering Hose"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        hose
    }

    /// Vendor A deletes (archives) product `id`.
    pub async fn archive(&self, id: &str) {
        let r = self
            .m
            .send(
                Method::DELETE,
                &format!("/api/v1/products/{id}"),
                &self.m.vendor_a,
                None,
            )
            .await;
        assert!(r.status().is_success());
    }

    /// Vendor B is suspended, with the event an admin's suspension emits.
    pub async fn suspend_vendor_b(&self) {
        let vid: souk::auth::VendorId = self.m.vendor_b_id.parse().unwrap();
        let now = self.m.app.state.clock.now();
        self.m
            .app
            .state
            .store
            .write(move |tx| {
                let mut v = souk::services::vendors::store::get_in(tx, vid)?.unwrap();
                v.status = souk::services::vendors::model::VendorStatus::Suspended;
                souk::services::vendors::store::put(tx, &v)?;
                tx.emit(souk::log::event::Envelope::new(
                    souk::log::event::Event::VendorSuspended {
                        vendor_id: vid.to_string(),
                        reason: "test".into(),
                        timestamp: now,
                    },
                    now,
                ));
                Ok(())
            })
            .await
            .unwrap();
    }
}

fn titles(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn typos_find_the_right_product_first() {
    let s = Shop::new().await;
    let v = s.search("q=iphnoe").await;
    assert_eq!(titles(&v)[0], "Apple iPhone 15 Pro", "{v}");
    assert!(
        !titles(&v).contains(&"Hidden iPhone Case".to_string()),
        "drafts never appear"
    );
    assert_eq!(v["query"]["words"][0]["matches"][0], "iphone");
    let v = s.search("q=blutooth%20speker").await;
    let first = &titles(&v)[0];
    assert!(first.contains("Bluetooth Speaker"), "{v}");
    assert_eq!(v["total"], 2, "only the two bluetooth speakers: {v}");
    // Short words get no typo tolerance: "bise" is not "bose".
    assert_eq!(s.search("q=bise%20").await["total"], 0);
    // The first letter is never corrected: "xpeaker" finds nothing.
    assert_eq!(s.search("q=xpeaker%20").await["total"], 0);
}

#[tokio::test]
async fn prefixes_phrases_and_exclusions() {
    let s = Shop::new().await;
    assert_eq!(
        titles(&s.search("q=headph").await),
        vec!["Sony Bluetooth Headphones"]
    );
    assert_eq!(
        titles(&s.search("q=sams").await),
        vec!["Samsung Galaxy S24"]
    );
    let v = s.search("q=blue").await;
    assert_eq!(
        v["total"], 3,
        "the three bluetooth products (one of them blue): {v}"
    );
    let v = s.search("q=%22bluetooth%20speaker%22").await;
    let mut t = titles(&v);
    t.sort();
    assert_eq!(
        t,
        vec!["Beta Bluetooth Speaker Mini", "JBL Flip Bluetooth Speaker"]
    );
    let v = s.search("q=speaker%20-bose").await;
    assert_eq!(v["total"], 2);
    assert!(!titles(&v).iter().any(|t| t.contains("Bose")));
    let sugg = json(s.m.app.get("/api/v1/search/suggestions?q=speak").await).await;
    let items = sugg["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 10);
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "product" && i["text"] == "Bose Portable Speaker")
    );
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "category" && i["text"] == "Audio")
    );
    assert!(items.iter().any(|i| i["kind"] == "brand"));
}

#[tokio::test]
async fn facet_counts_match_the_catalog() {
    let s = Shop::new().await;
    let v = s
        .search("facets=brand,vendor,category,price,attributes&limit=1")
        .await;
    let mut brands: HashMap<String, u64> = HashMap::new();
    for p in s.active() {
        *brands.entry(p.brand.to_string()).or_default() += 1;
    }
    let got: HashMap<String, u64> = v["facets"]["brand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["value"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, brands);
    let of_vendor = |id: &str| s.active().filter(|p| p.vendor == id).count() as u64;
    assert_eq!(v["facets"]["vendor"].as_array().unwrap().len(), 2);
    for f in v["facets"]["vendor"].as_array().unwrap() {
        assert_eq!(
            f["count"].as_u64().unwrap(),
            of_vendor(f["value"].as_str().unwrap())
        );
    }
    // Electronics counts its children's products.
    let tree = v["facets"]["category"].as_array().unwrap();
    let el = tree
        .iter()
        .find(|c| c["id"] == s.electronics.as_str())
        .unwrap();
    let in_el = s
        .active()
        .filter(|p| p.category == s.phones || p.category == s.audio)
        .count();
    assert_eq!(el["count"], in_el as u64);
    let audio = el["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Audio")
        .unwrap();
    assert_eq!(
        audio["count"],
        s.active().filter(|p| p.category == s.audio).count() as u64
    );
    let priced: u64 = v["facets"]["price"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(priced, s.active().count() as u64);
    let under_25: u64 = s
        .active()
        .filter(|p| p.price >= 1000 && p.price < 2500)
        .count() as u64;
    let bucket = v["facets"]["price"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["min"] == 1000)
        .unwrap();
    assert_eq!(bucket["count"], under_25);
    let black = s.active().filter(|p| p.color == "black").count() as u64;
    let colors = v["facets"]["attributes"]["color"].as_array().unwrap();
    assert_eq!(
        colors.iter().find(|c| c["value"] == "black").unwrap()["count"],
        black
    );
    assert_eq!(v["total"], s.active().count() as u64);
    assert_eq!(v["total_exact"], true);
}

#[tokio::test]
async fn filters_combine() {
    let s = Shop::new().await;
    let v = s.search("brand=JBL&price=..10000").await;
    assert_eq!(titles(&v), vec!["Beta Bluetooth Speaker Mini"]);
    let v = s
        .search(&format!(
            "category={}&attr=color:black&sort=price_asc",
            s.electronics
        ))
        .await;
    assert_eq!(
        titles(&v),
        vec![
            "Sony Bluetooth Headphones",
            "Samsung Galaxy S24",
            "Apple iPhone 15 Pro"
        ]
    );
    let v = s
        .search(&format!("vendor={}&q=speaker", s.m.vendor_b_id))
        .await;
    assert_eq!(titles(&v), vec!["Beta Bluetooth Speaker Mini"]);
    let v = s
        .search("category=knives&brand=Acme&brand=Sony&sort=price_desc")
        .await;
    assert_eq!(titles(&v), vec!["Chef Knife", "Bread Knife"]);
    // Pages: two by two through everything, no hit twice.
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    while let Some(c) = next {
        let q = if c.is_empty() {
            "limit=2&sort=price_asc".to_string()
        } else {
            format!("limit=2&sort=price_asc&cursor={c}")
        };
        let v = s.search(&q).await;
        seen.extend(titles(&v));
        next = v["next_cursor"].as_str().map(String::from);
    }
    assert_eq!(seen.len(), s.active().count());
    let page2 = titles(&s.search("limit=2&sort=price_asc&page=2").await);
    assert_eq!(page2, seen[2..4].to_vec());
}

#[tokio::test]
async fn updates_archives_and_suspensions_reach_the_index() {
    let s = Shop::new().await;
    let hose = s.retitle_hose().await;
    s.wait_total("watering", 1).await;
    s.archive(&hose).await;
    s.wait_total("watering", 0).await;

    s.suspend_vendor_b().await;
    s.wait_total("mini", 0).await;
    s.wait_total("speaker", 2).await;
}

#[tokio::test]
async fn bad_input_is_a_400_problem() {
    let s = Shop::new().await;
    let long = "a".repeat(257);
    for q in [
        format!("q={long}"),
        "sort=cheapest".into(),
        "facets=colour".into(),
        "limit=101".into(),
        "price=10-20".into(),
        "price=50..10".into(),
        "wat=1".into(),
    ] {
        let body = problem(
            s.m.app.get(&format!("/api/v1/search?{q}")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{q}");
    }
    problem(
        s.m.app
            .get(&format!("/api/v1/search/suggestions?q={long}"))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    // The catalog's path to the same engine.
    let v = json(s.m.app.get("/api/v1/search/products?q=iphone").await).await;
    assert_eq!(titles(&v), vec!["Apple iPhone 15 Pro"]);
}

#[tokio::test]
async fn search_is_unavailable_until_the_index_is_built() {
    let app = users::app().await;
    let r = app.get("/api/v1/search?q=x").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    let _w = workers(&app);
    eventually("the index to be built", || async {
        (app.get("/api/v1/search?q=x").await.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn restart_mid_indexing_converges_without_duplicates() {
    let mut s = Shop::new().await;
    // Many changes, and the indexer stopped while they are still arriving.
    for i in 0..30 {
        let mut body = product_body(
            &format!("Restart Lamp {i}"),
            &s.m.garden,
            &format!("RL-{i}"),
            1000 + i,
        );
        body["status"] = json!("active");
        s.m.product(&s.m.vendor_a, body).await;
        if i == 10 {
            drop(s.indexer.take());
        }
    }
    let expected = s.active().count() as u64 + 30;
    drop(s.relay.take());
    let Shop { m, .. } = s;
    let dir = m.app.stop().await;
    let app = spawn_app_in(
        dir,
        |c| {
            c.auth.argon2_memory_kib = 64;
            c.auth.argon2_iterations = 1;
        },
        axum::Router::new(),
    )
    .await;
    let _w = workers(&app);
    let stats = eventually("the index to converge", || async {
        let st = app.state.search.stats().ok()?;
        (st.documents == expected).then_some(st)
    })
    .await;
    assert_eq!(
        stats.distinct_ids, stats.documents,
        "no product indexed twice"
    );
    let v = json(app.get("/api/v1/search?q=restart%20lamp%20").await).await;
    assert_eq!(v["total"], 30);
}

#[tokio::test]
async fn reindex_while_queries_run_keeps_answering() {
    let s = Shop::new().await;
    let total = s.active().count() as u64;
    let app = &s.m.app;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = app.client.clone();
    let url = app.url("/api/v1/search?q=&limit=1");
    let flag = stop.clone();
    let load = tokio::spawn(async move {
        let mut answered = 0u32;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["total"], total);
            answered += 1;
        }
        answered
    });
    for _ in 0..3 {
        let r =
            s.m.send(
                Method::POST,
                "/api/v1/admin/search/reindex",
                &s.m.admin,
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(json(r).await["documents"], total);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);
    // Still following the log after the swaps.
    let mut body = product_body("Fresh Kettle", &s.m.kitchen, "FK-1", 3000);
    body["status"] = json!("active");
    s.m.product(&s.m.vendor_a, body).await;
    s.wait_total("kettle", 1).await;
    problem(
        s.m.send(
            Method::POST,
            "/api/v1/admin/search/reindex",
            &s.m.customer,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn feedback_feeds_popularity() {
    let s = Shop::new().await;
    let v = s.search("q=knife").await;
    let query_id = v["query_id"].as_str().unwrap().to_string();
    let bread = s
        .made
        .iter()
        .find(|p| p.title == "Bread Knife")
        .unwrap()
        .id
        .clone();
    for action in ["click", "add_to_cart", "purchase"] {
        let r =
            s.m.app
                .post_json(
                    "/api/v1/search/feedback",
                    &json!({"query_id": query_id, "product_id": bread, "action": action}),
                )
                .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    eventually("the clicked product to lead by popularity", || async {
        let v = s.search("sort=popularity&limit=1").await;
        (titles(&v) == vec!["Bread Knife".to_string()]).then_some(())
    })
    .await;
    let r =
        s.m.app
            .post_json(
                "/api/v1/search/feedback",
                &json!({"query_id": query_id, "product_id": bread, "action": "stare"}),
            )
            .await;
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn personalisation_reorders_but_never_changes_the_hits() {
    let s = Shop::new().await;
    let chef = s
        .made
        .iter()
        .find(|p| p.title == "Chef Knife")
        .unwrap()
        .id
        .clone();
    let r =
        s.m.send(
            Method::POST,
            "/api/v1/search/feedback",
            &s.m.customer,
            Some(
                json!({"query_id": uuid::Uuid::now_v7(), "product_id": chef, "action": "purchase"}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let rank = |v: &Value, title: &str| titles(v).iter().position(|t| t == title).unwrap();
    // The other knife shares only the category and brand: it rises for this shopper alone.
    // The purchase reaches popularity and the shopper's affinity by separate paths, so
    // wait for both before comparing.
    let (mine, plain, anon) = eventually("the purchase to count", || async {
        let mine = json(s.m.get("/api/v1/search?limit=100", &s.m.customer).await).await;
        let plain = json(
            s.m.get("/api/v1/search?limit=100&personalize=false", &s.m.customer)
                .await,
        )
        .await;
        let anon = s.search("limit=100").await;
        (rank(&mine, "Chef Knife") == 0 && rank(&mine, "Bread Knife") < rank(&plain, "Bread Knife"))
            .then_some((mine, plain, anon))
    })
    .await;
    assert_eq!(rank(&plain, "Bread Knife"), rank(&anon, "Bread Knife"));
    let mut a = titles(&mine);
    let mut b = titles(&plain);
    a.sort();
    b.sort();
    assert_eq!(a, b, "same hits, only the order moves");
}
