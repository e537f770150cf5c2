#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on setup failure
//! Generates the demo catalog the load benchmark serves, and times it: the issue wants
//! 100,000 products well under a minute. Driven by `benches/load_catalog.sh`; run alone
//! with `CATALOG_BENCH_DIR=/tmp/d CATALOG_BENCH_PRODUCTS=100000 cargo bench --bench catalog_demo`.

use souk::config::Config;
use std::time::Instant;

fn main() {
    let dir = std::env::var("CATALOG_BENCH_DIR").unwrap_or_else(|_| "bench-demo".into());
    let products: usize = std::env::var("CATALOG_BENCH_PRODUCTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("CATALOG_BENCH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(42);
    let config = Config {
        data_dir: dir.into(),
        ..Config::default()
    };
    let started = Instant::now();
    match souk::services::catalog::demo::generate(&config, products, seed) {
        Ok(report) => {
            println!("{report}");
            println!(
                "GENERATED {} products in {:.1} s",
                report.products,
                started.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            eprintln!("demo generation failed: {e}");
            std::process::exit(1);
        }
    }
}
