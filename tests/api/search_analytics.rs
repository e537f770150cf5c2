//! Search analytics, trending, popular-query suggestions and popularity from views and
//! sales, through HTTP on the hand-made catalog of `search.rs`: every search is recorded
//! on the telemetry topic, the admin report counts it, bad parameters and non-admins are
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::search::{Shop, eventually, workers};
use crate::users::{json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::log::event::Event;

/// Every telemetry event in the log, in no particular order.
fn telemetry(app: &crate::helpers::TestApp) -> Vec<Event> {
    let log = &app.state.log;
    let Some(info) = log.topic("telemetry") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (p, part) in info.partitions.iter().enumerate() {
        for r in log
            .read("telemetry", p as u16, part.low, usize::MAX)
            .unwrap()
        {
            out.push(r.envelope.event);
        }
    }
    out
}

async fn admin_get(s: &Shop, path: &str) -> reqwest::Response {
    s.m.get(path, &s.m.admin).await
}

fn row<'a>(list: &'a Value, query: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|r| r["query"] == query)
}

#[tokio::test]
async fn every_search_is_recorded_and_the_report_counts_it() {
    let s = Shop::new().await;
    let mut speaker_ids = Vec::new();
    for _ in 0..3 {
        let v = s.search("q=Speaker").await;
        speaker_ids.push(v["query_id"].as_str().unwrap().to_string());
    }
    for _ in 0..2 {
        assert_eq!(s.search("q=zzqx").await["total"], 0);
    }
    // A signed-in search with filters and a session of its own.
    let r =
        s.m.app
            .request(Method::GET, "/api/v1/search?q=blutooth%20speker&brand=JBL")
            .bearer_auth(&s.m.customer)
            .header("x-session-id", "sess-0123456789")
            .send()
            .await
            .unwrap();
    let signed = json(r).await;
    // A second page is the same search: not counted again.
    s.search("q=speaker&limit=1&page=2").await;
    // Feedback on one of the three "speaker" searches: a third of them clicked through.
    let jbl = s
        .made
        .iter()
        .find(|p| p.title.starts_with("JBL"))
        .unwrap()
        .id
        .clone();
    let r =
        s.m.app
            .post_json(
                "/api/v1/search/feedback",
                &json!({"query_id": speaker_ids[0], "product_id": jbl, "action": "click"}),
            )
            .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let report = eventually("the report to count the searches", || async {
        let v = json(admin_get(&s, "/api/v1/admin/search/analytics?days=7").await).await;
        let speaker = row(&v["top_queries"], "speaker")?;
        (speaker["searches"] == 3 && speaker["clicked_searches"] == 1).then_some(v)
    })
    .await;
    let speaker = row(&report["top_queries"], "speaker").unwrap();
    assert_eq!(speaker["click_through_rate"], 0.3333);
    assert_eq!(speaker["zero_result_searches"], 0);
    let zero = row(&report["zero_result_queries"], "zzqx").unwrap();
    assert_eq!(
        (
            zero["searches"].clone(),
            zero["zero_result_searches"].clone()
        ),
        (json!(2), json!(2))
    );
    assert!(row(&report["zero_result_queries"], "speaker").is_none());
    assert_eq!(
        row(&report["top_queries"], "blutooth speker").unwrap()["searches"],
        1
    );
    let days = report["by_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = s.m.app.state.clock.now().date().to_string();
    assert_eq!(days[6]["date"], today);
    assert_eq!(report["to"], today);
    assert_eq!(days[6]["searches"], report["totals"]["searches"]);
    assert!(report["totals"]["clicked_searches"].as_u64().unwrap() >= 1);
    assert_eq!(report["complete"], true);

    // The event itself: text, filters, count, latency, who, and the answer's query id.
    let events = telemetry(&s.m.app);
    let performed = events
        .iter()
        .find_map(|e| match e {
            Event::SearchPerformed {
                query_id,
                query,
                results,
                corrected,
                user_id,
                session_id,
                filters,
                latency_ms,
                ..
            } if *query_id == signed["query_id"] => Some((
                query.clone(),
                *results,
                corrected.clone(),
                user_id.clone(),
                session_id.clone(),
                filters.clone(),
                *latency_ms,
            )),
            _ => None,
        })
        .expect("the signed-in search is in the log");
    assert_eq!(performed.0, "blutooth speker");
    assert_eq!(performed.1, signed["total"].as_u64().unwrap());
    assert_eq!(performed.2.as_deref(), Some("bluetooth speaker"));
    assert!(performed.3.is_some(), "a signed-in user is named");
    assert_eq!(performed.4.as_deref(), Some("sess-0123456789"));
    assert_eq!(performed.5["brand"], json!(["JBL"]));
    assert_eq!(performed.5["sort"], "relevance");
    assert!(performed.6 > 0.0);
    let pages = events
        .iter()
        .filter(|e| matches!(e, Event::SearchPerformed { query, .. } if query == "speaker"))
        .count();
    assert_eq!(
        pages, 0,
        "queries are recorded as typed: \"Speaker\" three times"
    );
    let feedback = events
        .iter()
        .filter(
            |e| matches!(e, Event::SearchFeedback { query_id, .. } if *query_id == speaker_ids[0]),
        )
        .count();
    assert_eq!(feedback, 1);
    // Older days are empty, not missing.
    s.m.app.state.clock.advance(time::Duration::days(2));
    // (the admin's access token expired with the clock's move)
    let admin = crate::users::login(&s.m.app, "root@example.com", crate::users::PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let v = json(
        s.m.get("/api/v1/admin/search/analytics?days=1", admin)
            .await,
    )
    .await;
    assert_eq!(v["by_day"].as_array().unwrap().len(), 1);
    assert_eq!(v["totals"]["searches"], 0);
    assert!(v["top_queries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn analytics_are_for_admins_and_bad_parameters_are_400() {
    let s = Shop::new().await;
    let r = s.m.app.get("/api/v1/admin/search/analytics").await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    for token in [&s.m.customer, &s.m.vendor_a] {
        let r =
            s.m.get("/api/v1/admin/search/analytics?days=7", token)
                .await;
        problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    for q in [
        "days=0",
        "days=91",
        "days=abc",
        "days=",
        "limit=0",
        "limit=101",
        "week=1",
    ] {
        let body = problem(
            admin_get(&s, &format!("/api/v1/admin/search/analytics?{q}")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{q}");
    }
    let v = json(admin_get(&s, "/api/v1/admin/search/analytics").await).await;
    assert_eq!(v["days"], 7, "a week unless asked");
    // Dropped telemetry is a metric from the first scrape on.
    let metrics = s.m.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("souk_telemetry_dropped_total ")),
        "{metrics}"
    );
    for q in ["limit=0", "limit=51", "limit=x", "window=day"] {
        problem(
            s.m.app.get(&format!("/api/v1/search/trending?{q}")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
}

#[tokio::test]
async fn trending_counts_recent_searches_and_products_and_forgets_old_ones() {
    let s = Shop::new().await;
    for _ in 0..4 {
        s.search("q=knife").await;
    }
    s.search("q=speaker").await;
    for _ in 0..6 {
        s.search("q=zzqx").await;
    }
    let bose = s
        .made
        .iter()
        .find(|p| p.title == "Bose Portable Speaker")
        .unwrap()
        .id
        .clone();
    for _ in 0..2 {
        let r =
            s.m.app
                .post_json(
                    "/api/v1/search/feedback",
                    &json!({"query_id": uuid::Uuid::now_v7(), "product_id": bose, "action": "add_to_cart"}),
                )
                .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let v = eventually("trending to show the searches", || async {
        let v = json(s.m.app.get("/api/v1/search/trending").await).await;
        let q = v["hours"]["queries"].as_array()?;
        (q.len() >= 2 && !v["hours"]["products"].as_array()?.is_empty()).then_some(v)
    })
    .await;
    for w in ["hours", "day"] {
        let queries: Vec<&str> = v[w]["queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["query"].as_str().unwrap())
            .collect();
        assert_eq!(queries[0], "knife", "{v}");
        assert!(queries.contains(&"speaker"));
        assert!(!queries.contains(&"zzqx"), "no-result queries never trend");
        assert_eq!(v[w]["products"][0]["id"], bose.as_str());
        assert_eq!(v[w]["products"][0]["title"], "Bose Portable Speaker");
    }
    assert_eq!(v["hours"]["half_life_hours"], 1);
    assert_eq!(v["day"]["window_hours"], 24);
    let one = json(s.m.app.get("/api/v1/search/trending?limit=1").await).await;
    assert_eq!(one["day"]["queries"].as_array().unwrap().len(), 1);
    // Eight hours on: out of the last hours, still in the day, decayed.
    s.m.app.state.clock.advance(time::Duration::hours(8));
    let later = json(s.m.app.get("/api/v1/search/trending").await).await;
    assert!(later["hours"]["queries"].as_array().unwrap().is_empty());
    assert_eq!(later["day"]["queries"][0]["query"], "knife");
    assert!(
        later["day"]["queries"][0]["score"].as_f64().unwrap()
            < v["day"]["queries"][0]["score"].as_f64().unwrap()
    );
    s.m.app.state.clock.advance(time::Duration::days(2));
    let gone = json(s.m.app.get("/api/v1/search/trending").await).await;
    assert!(gone["day"]["queries"].as_array().unwrap().is_empty());
    assert!(gone["day"]["products"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn suggestions_include_popular_past_queries_typos_allowed() {
    let s = Shop::new().await;
    for _ in 0..3 {
        s.search("q=bluetooth%20speaker").await;
    }
    // Searched once: one shopper's query is never shown to others.
    s.search("q=bluetooth%20headphones").await;
    let items = eventually("the query to be suggested", || async {
        let v = json(
            s.m.app
                .get("/api/v1/search/suggestions?q=blutooth%20sp")
                .await,
        )
        .await;
        let items = v["items"].as_array()?.clone();
        items
            .iter()
            .any(|i| i["kind"] == "query" && i["text"] == "bluetooth speaker")
            .then_some(items)
    })
    .await;
    assert!(items.len() <= 10);
    assert_eq!(items[0]["kind"], "query", "past queries come first");
    let v = json(s.m.app.get("/api/v1/search/suggestions?q=blue").await).await;
    let texts: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "query")
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["bluetooth speaker"]);
    // Products, categories and brands still come along.
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "product")
    );
    assert!(v["items"].as_array().unwrap().len() <= 10);
}

#[tokio::test]
async fn views_and_sales_feed_popularity() {
    let s = crate::orders::Shop::new(10).await;
    let (_relay, _indexer) = workers(&s.m.app);
    let (_, buyer) = s.buyer("buyer@example.com", 100_000).await;
    assert_eq!(
        s.add(&buyer, &s.knife, 3).await.status(),
        StatusCode::CREATED
    );
    let r = s.checkout(&buyer, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Three units sold: the knife leads.
    eventually("the sale to count", || async {
        (top(&s.m.app).await? == s.knife.0).then_some(())
    })
    .await;
    // Views (as the storefront records them) of the board overtake it: 3 × 5 < 20.
    for _ in 0..20 {
        s.m.app.state.telemetry.record(Event::ProductViewed {
            product_id: s.board.0.clone(),
            user_id: None,
            session_id: Some("sess-views".into()),
            timestamp: s.m.app.state.clock.now(),
        });
    }
    eventually("the views to count", || async {
        (top(&s.m.app).await? == s.board.0).then_some(())
    })
    .await;
}

/// The id of the most popular product, once search answers.
async fn top(app: &crate::helpers::TestApp) -> Option<String> {
    let r = app.get("/api/v1/search?sort=popularity&limit=1").await;
    if r.status() != StatusCode::OK {
        return None;
    }
    let v = json(r).await;
    v["items"][0]["id"].as_str().map(str::to_string)
}

/// The suggestions for `q`: (kind, text) pairs, in order.
async fn suggest(s: &Shop, q: &str) -> Vec<(String, String)> {
    let r =
        s.m.app
            .get(&format!("/api/v1/search/suggestions?q={q}"))
            .await;
    assert_eq!(r.status(), StatusCode::OK, "{q}");
    let v = json(r).await;
    let items = v["items"].as_array().unwrap();
    assert!(items.len() <= 10, "{v}");
    items
        .iter()
        .map(|i| {
            let kind = i["kind"].as_str().unwrap().to_string();
            assert!(["query", "product", "category", "brand"].contains(&kind.as_str()));
            assert!(!i["value"].as_str().unwrap().is_empty());
            (kind, i["text"].as_str().unwrap().to_string())
        })
        .collect()
}

fn has(items: &[(String, String)], kind: &str, text: &str) -> bool {
    items.iter().any(|(k, t)| k == kind && t == text)
}

#[tokio::test]
async fn suggestions_follow_the_catalog_and_never_show_what_does_not_sell() {
    let s = Shop::new().await;
    // Typos, an unfinished word, brands and the category holding the matches.
    let items = suggest(&s, "blutooth%20spe").await;
    assert!(
        has(&items, "product", "JBL Flip Bluetooth Speaker"),
        "{items:?}"
    );
    assert!(has(&items, "product", "Beta Bluetooth Speaker Mini"));
    assert!(!has(&items, "product", "Sony Bluetooth Headphones"));
    assert!(has(&items, "category", "Audio"));
    assert!(has(&items, "brand", "JBL"));
    // A draft is never suggested.
    let items = suggest(&s, "iph").await;
    assert!(has(&items, "product", "Apple iPhone 15 Pro"));
    assert!(
        !items.iter().any(|(_, t)| t == "Hidden iPhone Case"),
        "{items:?}"
    );
    assert!(suggest(&s, "zzyzx").await.is_empty());
    assert!(suggest(&s, "%20%20").await.is_empty());

    // A renamed product is suggested by its new title, an archived one no more.
    let hose = s.retitle_hose().await;
    eventually("the new title to be suggested", || async {
        has(
            &suggest(&s, "waterin").await,
            "product",
            "Garden Watering Hose",
        )
        .then_some(())
    })
    .await;
    s.archive(&hose).await;
    eventually("the archived product to vanish", || async {
        suggest(&s, "waterin").await.is_empty().then_some(())
    })
    .await;
    let items = suggest(&s, "gard").await;
    assert!(!items.iter().any(|(k, _)| k == "product"), "{items:?}");

    // A suspended vendor's products vanish from suggestions, and with them their brand
    // counts: JBL's speaker of vendor A stays.
    s.suspend_vendor_b().await;
    let items = eventually("the suspended vendor's product to vanish", || async {
        let items = suggest(&s, "speaker").await;
        (!has(&items, "product", "Beta Bluetooth Speaker Mini")).then_some(items)
    })
    .await;
    assert!(has(&items, "product", "JBL Flip Bluetooth Speaker"));
    assert!(has(&items, "product", "Bose Portable Speaker"));
}
