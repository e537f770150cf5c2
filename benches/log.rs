#![allow(clippy::expect_used)] // a bench that cannot set up should stop loudly
//! The event log: append throughput (batches of 100), sequential read throughput, and the
//! relay's latency from a durable commit in redb to the event being durable in the log.
//! Run with `cargo bench --bench log`. Targets (issue 2): append > 200k events/s, relay
//! p99 < 5 ms.

use criterion::{BatchSize, Criterion, Throughput};
use souk::clock::Clock;
use souk::config::{Config, LogConfig};
use souk::log::EventLog;
use souk::log::event::{Envelope, Event};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn envelope(i: usize) -> Envelope {
    let now = time::OffsetDateTime::now_utc();
    Envelope::new(
        Event::OrderStatusChanged {
            order_id: format!("0199c0de-0000-7000-8000-{i:012x}"),
            previous_status: "pending".into(),
            new_status: "paid".into(),
            timestamp: now,
        },
        now,
    )
    .with_actor("system")
}

fn batch(n: usize, start: usize) -> Vec<Envelope> {
    (start..start + n).map(envelope).collect()
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        EventLog::open(dir.path(), &LogConfig::default(), Clock::default()).expect("open log");
    let events = batch(100, 0);
    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Elements(100));
    g.bench_function("batch_100", |b| {
        b.iter(|| log.append(black_box(&events)).expect("append"))
    });
    // What the relay pays per round: the batch plus an fsync.
    g.bench_function("batch_100_fsync", |b| {
        b.iter(|| {
            log.append(black_box(&events)).expect("append");
            log.persist().expect("persist");
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        EventLog::open(dir.path(), &LogConfig::default(), Clock::default()).expect("open log");
    for start in (0..N).step_by(1000) {
        log.append(&batch(1000, start)).expect("append");
    }
    let info = log.topic("orders").expect("topic");
    let mut g = c.benchmark_group("log_read");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("sequential_all_partitions_pages_of_1000", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut n = 0usize;
                for (p, part) in info.partitions.iter().enumerate() {
                    let mut from = part.low;
                    loop {
                        let recs = log.read("orders", p as u16, from, 1000).expect("read");
                        let Some(last) = recs.last() else { break };
                        from = last.offset + 1;
                        n += recs.len();
                    }
                }
                assert_eq!(n, N);
                n
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// One command at a time, each emitting one event: time from the command's durable
/// commit (the caller hears "ok") until the event is readable in the log, and until the
/// relay has fsynced it there.
fn relay_latency() {
    const WARMUP: usize = 200;
    const N: usize = 3000;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let app = souk::App::open(config).expect("open app");
        let workers = app.start_workers().expect("workers");
        let mut progress = workers.relay.progress();
        let (mut visible, mut durable) = (Vec::with_capacity(N), Vec::with_capacity(N));
        for i in 0..WARMUP + N {
            let e = envelope(i);
            app.state
                .store
                .write(move |tx| {
                    tx.emit(e);
                    Ok(())
                })
                .await
                .expect("write");
            let acked = Instant::now();
            let target = (i + 1) as u64;
            let mut seen = None;
            loop {
                let p = *progress.borrow_and_update();
                if p.appended >= target && seen.is_none() {
                    seen = Some(Instant::now());
                }
                if p.relayed >= target {
                    break;
                }
                progress.changed().await.expect("relay running");
            }
            let synced = Instant::now();
            if i >= WARMUP {
                visible.push(seen.unwrap_or(synced) - acked);
                durable.push(synced - acked);
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for (what, mut v) in [
            ("readable in the log", visible),
            ("fsynced in the log", durable),
        ] {
            v.sort();
            println!(
                "relay latency, commit acknowledged -> {what} ({N} events, one at a time): \
                 p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                ms(percentile(&v, 0.50)),
                ms(percentile(&v, 0.99)),
                ms(percentile(&v, 1.0)),
            );
        }
        workers
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        app.state.store.close();
    });
}

/// Process CPU time (user + system, all threads, fjall's included) from /proc, in
/// seconds: a figure that holds even when other processes share the cores.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// 500k events in batches of 100, timed as a whole: wall-clock rate and CPU per event.
fn append_loop() {
    const N: usize = 500_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        EventLog::open(dir.path(), &LogConfig::default(), Clock::default()).expect("open log");
    let events = batch(100, 0);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..N / 100 {
        log.append(&events).expect("append");
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    println!(
        "append loop: {N} events in batches of 100: {:.0} events/s wall-clock{}",
        N as f64 / wall,
        cpu.map(|c| format!(", {:.2} us CPU per event (all threads)", c * 1e6 / N as f64))
            .unwrap_or_default()
    );
}

fn main() {
    relay_latency();
    append_loop();
    let mut c = Criterion::default().configure_from_args();
    append(&mut c);
    read(&mut c);
    c.final_summary();
}
