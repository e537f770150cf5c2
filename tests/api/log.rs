//! The event log through the real stores on disk: the outbox relay (exactly once, dense
//! offsets, crash recovery), consumer groups, retention, and the events' JSON contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use souk::clock::Clock;
use souk::log::event::{Envelope, Event};
use souk::log::{EventLog, LogRecord, ReadError, consumer};
use souk::store::tables::OUTBOX_SEQ_TO_EVENT;
use souk::{App, Config};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use time::macros::datetime;
use uuid::Uuid;

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

fn open(dir: &Path, clock: &Clock) -> App {
    App::open_with_clock(config(dir), clock.clone()).unwrap()
}

/// Stops the workers and closes the stores, as graceful shutdown does.
async fn close(app: App, workers: Option<souk::app::Workers>) {
    if let Some(w) = workers {
        w.shutdown(Duration::from_secs(10)).await.unwrap();
    }
    app.state.store.close();
}

fn status_changed(order: &str, from: &str, to: &str) -> Envelope {
    Envelope::new(
        Event::OrderStatusChanged {
            order_id: order.into(),
            previous_status: from.into(),
            new_status: to.into(),
            timestamp: datetime!(2026-11-26 09:30 UTC),
        },
        datetime!(2026-11-26 09:30 UTC),
    )
}

/// Commits `n` commands, command `i` emitting `per` events for `order-{i % keys}`.
async fn write_orders(app: &App, n: usize, per: usize, keys: usize) -> Vec<Uuid> {
    let mut handles = Vec::new();
    for i in 0..n {
        let store = app.state.store.clone();
        handles.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    let mut ids = Vec::new();
                    for j in 0..per {
                        let e = status_changed(
                            &format!("order-{}", i % keys),
                            &format!("s{j}"),
                            &format!("s{}", j + 1),
                        );
                        ids.push(e.id);
                        tx.emit(e);
                    }
                    Ok(ids)
                })
                .await
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.extend(h.await.unwrap().unwrap());
    }
    ids
}

/// Every record of a topic, partition by partition, checking offsets are dense from the
/// low watermark.
fn all_records(log: &EventLog, topic: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let Some(info) = log.topic(topic) else {
        return out;
    };
    for (p, part) in info.partitions.iter().enumerate() {
        let recs = log.read(topic, p as u16, part.low, usize::MAX).unwrap();
        let offsets: Vec<u64> = recs.iter().map(|r| r.offset).collect();
        let expected: Vec<u64> = (part.low..part.next).collect();
        assert_eq!(offsets, expected, "{topic}/{p} offsets dense and ordered");
        out.extend(recs);
    }
    out
}

fn outbox_len(app: &App) -> u64 {
    use redb::ReadableTableMetadata;
    app.state
        .store
        .read()
        .unwrap()
        .open_table(OUTBOX_SEQ_TO_EVENT)
        .unwrap()
        .len()
        .unwrap()
}

fn assert_exactly_once(log: &EventLog, ids: &[Uuid]) {
    let recs = all_records(log, "orders");
    let mut seen = BTreeMap::new();
    for r in &recs {
        *seen.entry(r.envelope.id).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "an event appears twice");
    let want: BTreeSet<Uuid> = ids.iter().copied().collect();
    let got: BTreeSet<Uuid> = seen.keys().copied().collect();
    assert_eq!(got, want, "the log holds exactly the committed events");
    assert!(log.verify().unwrap().is_empty(), "{:?}", log.verify());
}

#[tokio::test]
async fn committed_events_reach_the_log_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    let ids = write_orders(&app, 200, 3, 17).await;
    workers.relay.flush().await.unwrap();
    assert_eq!(outbox_len(&app), 0, "flush leaves the outbox empty");
    assert_eq!(workers.relay.lag(), 0);
    let status = workers.relay.status();
    assert!(
        status.running
            && !status.is_stuck(Duration::from_secs(1))
            && status.last_relayed_at.is_some()
    );
    assert_exactly_once(&app.state.log, &ids);
    // one command's events keep their order within their key's partition
    for r in all_records(&app.state.log, "orders") {
        assert_eq!(r.partition, souk::log::partition_for(&r.envelope.key, 10));
    }
    for p in 0..10u16 {
        let recs = app.state.log.read("orders", p, 0, usize::MAX).unwrap();
        let mut last: BTreeMap<String, u32> = BTreeMap::new();
        for r in recs {
            let Event::OrderStatusChanged { new_status, .. } = &r.envelope.event else {
                panic!()
            };
            let step: u32 = new_status[1..].parse().unwrap();
            let prev = last.insert(r.envelope.key.clone(), step).unwrap_or(0);
            assert!(
                step == prev + 1 || (prev == 3 && step == 1),
                "{} went {prev} -> {step}",
                r.envelope.key
            );
        }
    }
    close(app, Some(workers)).await;
}

#[tokio::test]
async fn events_committed_while_the_relay_was_down_move_on_next_start() {
    // The state after a crash before the log's fsync: rows in the outbox, not in the log.
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let ids = write_orders(&app, 20, 2, 5).await;
    assert_eq!(outbox_len(&app), 40);
    close(app, None).await;

    let app = open(dir.path(), &clock);
    assert!(app.state.log.topic("orders").is_none());
    let workers = app.start_workers().unwrap();
    workers.relay.flush().await.unwrap();
    assert_exactly_once(&app.state.log, &ids);
    assert_eq!(outbox_len(&app), 0);
    close(app, Some(workers)).await;
}

#[tokio::test]
async fn rows_already_in_the_log_are_not_appended_again_after_a_crash() {
    // The state after a crash between the log's fsync and the outbox delete: the rows are
    // still in the outbox, and the log's relay position covers them.
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    let first = write_orders(&app, 30, 2, 7).await;
    workers.relay.flush().await.unwrap();
    let relayed = app.state.log.relay_position();
    assert_eq!(relayed, 60);
    workers.relay.stop();
    // Put the moved rows back, as if the delete had never committed.
    let rows: Vec<(u64, Vec<u8>)> = {
        let recs = all_records(&app.state.log, "orders");
        let mut by_id: BTreeMap<Uuid, Envelope> = recs
            .into_iter()
            .map(|r| (r.envelope.id, r.envelope))
            .collect();
        first
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    i as u64 + 1,
                    serde_json::to_vec(&by_id.remove(id).unwrap()).unwrap(),
                )
            })
            .collect()
    };
    app.state
        .store
        .write(move |tx| {
            let mut t = tx.open_table(OUTBOX_SEQ_TO_EVENT)?;
            for (seq, v) in &rows {
                t.insert(*seq, v.as_slice())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(outbox_len(&app), 60);
    drop(workers);
    close(app, None).await;

    let app = open(dir.path(), &clock);
    assert_eq!(
        app.state.log.relay_position(),
        relayed,
        "the position survived the restart"
    );
    let workers = app.start_workers().unwrap();
    let more = write_orders(&app, 10, 1, 3).await;
    workers.relay.flush().await.unwrap();
    assert_eq!(outbox_len(&app), 0, "the leftover rows were deleted");
    let all: Vec<Uuid> = first.into_iter().chain(more).collect();
    assert_exactly_once(&app.state.log, &all);
    assert_eq!(app.state.log.relay_position(), 70);
    close(app, Some(workers)).await;
}

#[tokio::test]
async fn a_log_ahead_of_its_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    write_orders(&app, 3, 1, 3).await;
    close(app, Some(workers)).await;
    // A restore that brought back an older database but kept the newer log.
    std::fs::remove_file(dir.path().join("souk.redb")).unwrap();
    let app = open(dir.path(), &clock);
    let e = app.start_workers().err().expect("refused").to_string();
    assert!(e.contains("does not belong to this database"), "{e}");
    app.state.store.close();
}

#[tokio::test]
async fn consumer_groups_resume_after_restart_and_stay_independent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    write_orders(&app, 40, 1, 40).await;
    workers.relay.flush().await.unwrap();
    let log = &app.state.log;

    let mut a = log.consumer("mailer", "orders").unwrap();
    let first = a.poll(15).unwrap();
    assert_eq!(first.len(), 15);
    a.commit().unwrap();
    let mut b = log.consumer("analytics", "orders").unwrap();
    assert_eq!(b.poll(1000).unwrap().len(), 40);
    b.commit().unwrap();
    // a redb consumer: effect and offset in one transaction
    let mut c = log
        .consumer_from_store("indexer", "orders", &app.state.store)
        .unwrap();
    let seen = c.poll(25).unwrap();
    assert_eq!(seen.len(), 25);
    let (c2, n) = (c.clone(), seen.len() as u64);
    app.state
        .store
        .write(move |tx| {
            tx.open_table(redb::TableDefinition::<&str, u64>::new("test_effects"))?
                .insert("seen", n)?;
            c2.store_offsets(tx)
        })
        .await
        .unwrap();
    // c reads 5 more but never stores them: after the restart it sees them again
    assert_eq!(c.poll(5).unwrap().len(), 5);
    drop((a, b, c));
    close(app, Some(workers)).await;

    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    let log = &app.state.log;
    let mut a = log.consumer("mailer", "orders").unwrap();
    let rest = a.poll(1000).unwrap();
    assert_eq!(rest.len(), 25, "mailer resumes after its 15");
    let ids: BTreeSet<Uuid> = first.iter().chain(&rest).map(|r| r.envelope.id).collect();
    assert_eq!(ids.len(), 40, "nothing twice, nothing skipped");
    let mut b = log.consumer("analytics", "orders").unwrap();
    assert!(
        b.poll(1000).unwrap().is_empty(),
        "analytics had read everything"
    );
    let mut c = log
        .consumer_from_store("indexer", "orders", &app.state.store)
        .unwrap();
    assert_eq!(
        c.poll(1000).unwrap().len(),
        15,
        "the indexer resumes where its redb offset says"
    );
    for p in 0..10u16 {
        let committed = log.committed("analytics", "orders", p).unwrap();
        assert_eq!(
            committed,
            Some(log.topic("orders").unwrap().partitions[usize::from(p)].next)
        );
        let rtx = app.state.store.read().unwrap();
        assert!(
            consumer::stored_offset(&rtx, "mailer", "orders", p)
                .unwrap()
                .is_none()
        );
    }
    // new events reach both groups
    write_orders(&app, 5, 1, 5).await;
    workers.relay.flush().await.unwrap();
    assert_eq!(a.poll(1000).unwrap().len(), 5);
    assert_eq!(b.poll(1000).unwrap().len(), 5);
    // committing past the end is refused
    assert!(log.commit("mailer", "orders", 0, 1_000_000).is_err());
    close(app, Some(workers)).await;
}

#[tokio::test]
async fn retention_deletes_old_events_and_a_lagging_group_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let app = open(dir.path(), &clock);
    let workers = app.start_workers().unwrap();
    let old = write_orders(&app, 50, 1, 50).await;
    workers.relay.flush().await.unwrap();
    let log = app.state.log.clone();
    let mut slow = log.consumer("slow", "orders").unwrap();
    assert_eq!(slow.poll(3).unwrap().len(), 3);
    slow.commit().unwrap();

    clock.advance(time::Duration::days(8));
    let young = write_orders(&app, 20, 1, 50).await;
    workers.relay.flush().await.unwrap();
    let report = log.enforce_retention().unwrap();
    assert_eq!(report.deleted, 50);
    assert_exactly_once(&log, &young);
    let _ = old;

    let mut slow = log.consumer("slow", "orders").unwrap();
    let behind = match slow.poll(100) {
        Err(ReadError::FellBehind(f)) => f,
        other => panic!("expected FellBehind, got {other:?}"),
    };
    let low = log.topic("orders").unwrap().partitions[usize::from(behind.partition)].low;
    assert_eq!(behind.first_available, low);
    assert!(behind.requested < low);
    assert!(
        behind
            .to_string()
            .contains(&format!("first available offset is {low}")),
        "{behind}"
    );
    // the consumer decides to skip ahead, partition by partition, and then reads the rest
    let mut got = Vec::new();
    loop {
        match slow.poll(100) {
            Ok(r) if r.is_empty() => break,
            Ok(r) => got.extend(r),
            Err(ReadError::FellBehind(f)) => slow.seek(f.partition, f.first_available),
            Err(e) => panic!("{e}"),
        }
    }
    let got: BTreeSet<Uuid> = got.into_iter().map(|r| r.envelope.id).collect();
    assert_eq!(got, young.iter().copied().collect());
    // a group that never committed starts at the oldest kept event, no error
    assert_eq!(
        log.consumer("fresh", "orders")
            .unwrap()
            .poll(1000)
            .unwrap()
            .len(),
        20
    );
    close(app, Some(workers)).await;
}

#[test]
fn a_consumer_of_some_types_passes_over_the_rest_and_still_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), &Default::default(), Clock::default()).unwrap();
    let t = datetime!(2026-11-26 09:30 UTC);
    let events: Vec<Envelope> = (0..30)
        .map(|i| {
            let event = if i % 3 == 0 {
                Event::ProductViewed {
                    product_id: format!("p-{i}"),
                    user_id: None,
                    session_id: None,
                    timestamp: t,
                }
            } else {
                Event::PageViewed {
                    path: format!("/p/p-{i}"),
                    user_id: None,
                    session_id: None,
                    referrer: None,
                    timestamp: t,
                }
            };
            Envelope::new(event, t)
        })
        .collect();
    log.append(&events).unwrap();

    let mut c = log
        .consumer("views", "telemetry")
        .unwrap()
        .only(&["Product.Viewed"]);
    let mut products = Vec::new();
    let mut looked = 0;
    loop {
        let got = c.poll(7).unwrap();
        looked += got.len() + c.skipped();
        if got.is_empty() && c.skipped() == 0 {
            break;
        }
        assert!(got.len() + c.skipped() <= 7);
        assert!(
            got.iter()
                .all(|r| r.envelope.type_name() == "Product.Viewed")
        );
        products.extend(got.into_iter().map(|r| r.envelope.key));
    }
    assert_eq!(looked, 30);
    products.sort();
    let mut want: Vec<String> = (0..30).step_by(3).map(|i| format!("p-{i}")).collect();
    want.sort();
    assert_eq!(products, want);
    // The offsets passed over are consumed: a restart of the group finds nothing left.
    c.commit().unwrap();
    let mut again = log.consumer("views", "telemetry").unwrap();
    assert!(again.poll(100).unwrap().is_empty());
    // Another group without the filter still reads all of it.
    let mut all = log.consumer("everything", "telemetry").unwrap();
    assert_eq!(all.poll(100).unwrap().len(), 30);
}

#[test]
fn tail_prints_the_log_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(async {
        let app = open(dir.path(), &clock);
        let workers = app.start_workers().unwrap();
        let ids = write_orders(&app, 12, 1, 12).await;
        close(app, Some(workers)).await;
        ids
    });
    let log = EventLog::open(&dir.path().join("log"), &config(dir.path()).log, clock).unwrap();
    let mut out = Vec::new();
    let summary = souk::log::tail::tail(&log, "orders", None, None, &mut out).unwrap();
    assert_eq!(summary.printed, 12);
    let lines: Vec<LogRecord> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: BTreeSet<Uuid> = lines.iter().map(|r| r.envelope.id).collect();
    assert_eq!(got, ids.into_iter().collect());
}

/// One envelope per event variant, with fixed ids and times: the JSON contract.
fn golden_samples() -> Vec<Envelope> {
    let t = datetime!(2026-11-26 09:30 UTC);
    let events = vec![
        Event::UserRegistered {
            user_id: "u-1".into(),
            email: "ada@example.com".into(),
            role: "customer".into(),
            timestamp: t,
        },
        Event::UserProfileUpdated {
            user_id: "u-1".into(),
            changes: json!({"name": "Ada"}),
            timestamp: t,
        },
        Event::UserDeleted {
            user_id: "u-1".into(),
            timestamp: t,
        },
        Event::ProductCreated {
            product_id: "p-1".into(),
            vendor_id: "v-1".into(),
            category: "books".into(),
            price: 1999,
            timestamp: t,
        },
        Event::ProductUpdated {
            product_id: "p-1".into(),
            changes: json!({"price": 2499}),
            timestamp: t,
        },
        Event::ProductArchived {
            product_id: "p-1".into(),
            vendor_id: "v-1".into(),
            timestamp: t,
        },
        Event::InventoryUpdated {
            product_id: "p-1".into(),
            quantity: 12,
            warehouse: "main".into(),
            variant_id: "p-1-red".into(),
            available: 10,
            timestamp: t,
        },
        Event::ProductBackInStock {
            product_id: "p-1".into(),
            variant_id: "p-1-red".into(),
            timestamp: t,
        },
        Event::OrderCreated {
            order_id: "o-1".into(),
            user_id: "u-1".into(),
            items: json!([{"productId": "p-1", "quantity": 2}]),
            total: 3998,
            timestamp: t,
        },
        Event::OrderStatusChanged {
            order_id: "o-1".into(),
            previous_status: "pending".into(),
            new_status: "paid".into(),
            timestamp: t,
        },
        Event::OrderCompleted {
            order_id: "o-1".into(),
            timestamp: t,
        },
        Event::PaymentInitiated {
            payment_id: "pay-1".into(),
            order_id: Some("o-1".into()),
            amount: 3998,
            method: "card".into(),
            currency: "EUR".into(),
            timestamp: t,
        },
        Event::PaymentCompleted {
            payment_id: "pay-1".into(),
            order_id: Some("o-1".into()),
            status: "captured".into(),
            timestamp: t,
        },
        Event::PaymentFailed {
            payment_id: "pay-2".into(),
            order_id: None,
            reason: "card_declined".into(),
            timestamp: t,
        },
        Event::PaymentRefunded {
            payment_id: "pay-1".into(),
            order_id: Some("o-1".into()),
            amount: 1999,
            reason: "returned".into(),
            currency: "EUR".into(),
            timestamp: t,
        },
        Event::VendorApproved {
            vendor_id: "v-1".into(),
            store_name: "Ada's Books".into(),
            timestamp: t,
        },
        Event::VendorSuspended {
            vendor_id: "v-1".into(),
            reason: "fraud review".into(),
            timestamp: t,
        },
        Event::PayoutProcessed {
            vendor_id: "v-1".into(),
            amount: 1799,
            timestamp: t,
        },
        Event::SearchPerformed {
            query: "blutooth speaker".into(),
            results: 3,
            corrected: Some("bluetooth speaker".into()),
            user_id: Some("u-1".into()),
            session_id: Some("s-1".into()),
            timestamp: t,
            query_id: "q-1".into(),
            filters: json!({"brand": ["JBL"], "sort": "relevance"}),
            latency_ms: 1.5,
        },
        Event::SearchFeedback {
            query_id: "q-1".into(),
            product_id: "p-1".into(),
            action: "click".into(),
            user_id: None,
            session_id: Some("s-1".into()),
            timestamp: t,
        },
        Event::PageViewed {
            path: "/products/p-1".into(),
            user_id: None,
            session_id: Some("s-1".into()),
            referrer: Some("https://example.com/".into()),
            timestamp: t,
        },
        Event::ProductViewed {
            product_id: "p-1".into(),
            user_id: Some("u-1".into()),
            session_id: None,
            timestamp: t,
        },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let mut e = Envelope::new(event, t)
                .with_actor("u-1")
                .with_correlation("req-1");
            e.id = Uuid::parse_str(&format!("0199c0de-0000-7000-8000-{:012x}", i + 1)).unwrap();
            e
        })
        .collect()
}

/// The JSON of every event is the contract with connectors. If this fails, a change broke
/// it: fix the code, or (a deliberate, announced change) regenerate the file with
/// `SOUK_BLESS=1 cargo test --test api golden` and review the diff.
#[test]
fn golden_event_json() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/golden/events.json");
    let samples = golden_samples();
    let actual = serde_json::to_value(&samples).unwrap();
    if std::env::var_os("SOUK_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (Value::Array(want), Value::Array(got)) = (&expected, &actual) else {
        panic!("not arrays")
    };
    for (w, g) in want.iter().zip(got) {
        assert_eq!(g, w, "event JSON changed for {}", w["type"]);
    }
    assert_eq!(got.len(), want.len());
    // every variant of the catalogue is pinned, and the file reads back into the same events
    let types: BTreeSet<&str> = want.iter().filter_map(|v| v["type"].as_str()).collect();
    let catalogue: BTreeSet<&str> = Event::CATALOGUE.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, catalogue, "every event type has a golden sample");
    let back: Vec<Envelope> = serde_json::from_value(expected).unwrap();
    assert_eq!(back, samples);
    for (e, (name, topic)) in samples.iter().zip(Event::CATALOGUE) {
        assert_eq!((e.type_name(), e.topic.as_str()), (*name, *topic));
    }
}
