#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on setup failure
//! Durable writes through `Store::write`: one command at a time (each pays its own fsync)
//! and 64 commands in flight (the writer groups them under one fsync).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::TableDefinition;
use souk::store::Store;
use std::time::Duration;

const BENCH: TableDefinition<u64, &[u8]> = TableDefinition::new("bench_values");

fn durable_writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 64, 64).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = vec![7u8; 200];
    let mut key = 0u64;

    let mut group = c.benchmark_group("store");
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("durable_write_one_at_a_time", |b| {
        b.iter(|| {
            key += 1;
            let (k, v) = (key, value.clone());
            rt.block_on(store.write(move |tx| {
                tx.open_table(BENCH)?.insert(k, v.as_slice())?;
                Ok(())
            }))
            .unwrap();
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("durable_write_64_in_flight", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut handles = Vec::with_capacity(64);
                for _ in 0..64 {
                    key += 1;
                    let (s, k, v) = (store.clone(), key, value.clone());
                    handles.push(tokio::spawn(async move {
                        s.write(move |tx| {
                            tx.open_table(BENCH)?.insert(k, v.as_slice())?;
                            Ok(())
                        })
                        .await
                    }));
                }
                for h in handles {
                    h.await.unwrap().unwrap();
                }
            })
        })
    });
    group.finish();
    store.close();
}

criterion_group!(benches, durable_writes);
criterion_main!(benches);
