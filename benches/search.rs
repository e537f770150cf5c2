#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on setup failure
//! Search benchmark on the demo marketplace (100,000 products by default): the full index
//! build from redb (time and size on disk, printed as `BUILT`), then criterion timings of
//! 1-3 word queries with facets and typos (also as the API runs them: recorded on the
//! telemetry topic), and of suggestions over the catalog and 7,000 popular past queries.
//! Run: `SEARCH_BENCH_DIR=/tmp/d SEARCH_BENCH_PRODUCTS=100000 cargo bench --bench search`
//! (an existing demo dir is reused; the index is rebuilt every run).

use criterion::{Criterion, criterion_group};
use souk::app::App;
use souk::config::Config;
use souk::log::event::{Envelope, Event};
use souk::services::search::{self, SearchRequest};
use std::time::{Duration, Instant};

/// A mix like shoppers type: one to three words, typos, unfinished words, facets.
const QUERIES: &[&str] = &[
    "q=mug&facets=category,brand,price",
    "q=ceramic%20teapot&facets=category,brand,price",
    "q=leathr%20boot&facets=brand,price",
    "q=oak%20cutting%20board&facets=category",
    "q=cast%20iron%20pa&facets=category,brand,price",
    "q=wool%20scarf&sort=price_asc&facets=price",
    "q=terracota%20planter&facets=category,brand",
    "q=linen%20shirt&in_stock=true&facets=brand",
];

fn config() -> Config {
    let dir = std::env::var("SEARCH_BENCH_DIR").unwrap_or_else(|_| "bench-search".into());
    Config {
        data_dir: dir.into(),
        ..Config::default()
    }
}

fn prepare() -> Config {
    let config = config();
    let products: usize = std::env::var("SEARCH_BENCH_PRODUCTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    if !config.data_dir.join("souk.redb").exists() {
        let started = Instant::now();
        match souk::services::catalog::demo::generate(&config, products, 42) {
            Ok(r) => println!(
                "GENERATED {} products in {:.1} s",
                r.products,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("demo generation failed: {e}");
                std::process::exit(1);
            }
        }
    }
    match search::reindex(&config) {
        Ok(r) => println!(
            "BUILT {} documents in {:.1} s, {:.1} MiB on disk",
            r.documents,
            r.seconds,
            r.bytes as f64 / 1_048_576.0
        ),
        Err(e) => {
            eprintln!("index build failed: {e}");
            std::process::exit(1);
        }
    }
    config
}

fn parse(q: &str, config: &Config) -> SearchRequest {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    match SearchRequest::parse(&pairs, &config.search) {
        Ok(r) => r,
        Err(e) => panic!("bench query {q}: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let config = prepare();
    let app = match App::open(config.clone()) {
        Ok(a) => a,
        Err(e) => panic!("open: {e}"),
    };
    let state = app.state.clone();
    let requests: Vec<SearchRequest> = QUERIES.iter().map(|q| parse(q, &config)).collect();
    // Popular past queries, as a shop with history has them: suggestions scan these too.
    let words = [
        "mug", "ceramic", "teapot", "leather", "boot", "oak", "board", "cast", "iron", "pan",
        "wool", "scarf", "linen", "shirt", "planter", "blue", "large", "set",
    ];
    let now = state.clock.now();
    for i in 0..21_000usize {
        let n = i / 3;
        let q = format!(
            "{} {} {}",
            words[n % words.len()],
            words[(n / words.len()) % words.len()],
            n % 23
        );
        state.search.analytics.apply(&Envelope::new(
            Event::SearchPerformed {
                query: q,
                results: 1,
                corrected: None,
                user_id: None,
                session_id: None,
                timestamp: now,
                query_id: format!("bench-{i}"),
                filters: serde_json::Value::Null,
                latency_ms: 1.0,
            },
            now,
        ));
    }
    // p99 over the mix, measured one query at a time, next to criterion's means.
    let mut times = Vec::new();
    for _ in 0..50 {
        for r in &requests {
            let t = Instant::now();
            let _ = search::search(&state, r, &Default::default());
            times.push(t.elapsed());
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "QUERY p50 {:?} p99 {:?} over {} queries",
        p(0.5),
        p(0.99),
        times.len()
    );
    let mut g = c.benchmark_group("search");
    g.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    g.bench_function("query mix with facets", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            search::search(&state, &requests[i], &Default::default())
        })
    });
    let visitor = search::Visitor::default();
    g.bench_function("query mix recorded", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            search::search_as(&state, &requests[i], &Default::default(), &visitor)
        })
    });
    let prefixes = ["mu", "cera", "leath", "terrac", "cast ir", "linen sh"];
    let mut j = 0;
    g.bench_function("suggestions", |b| {
        b.iter(|| {
            j = (j + 1) % prefixes.len();
            search::suggest::suggestions(&state, prefixes[j])
        })
    });
    g.finish();
    app.state.store.close();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
