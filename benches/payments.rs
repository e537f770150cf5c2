#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on setup failure
//! The money path: ledger postings (durable, one at a time and 64 in flight so the writer
//! groups them under one fsync), balance reads, and whole wallet payments through the
//! payment command (fraud scoring, ledger, events, audit) with an order hook.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use souk::auth::{Principal, Role, UserId};
use souk::money::{Currency, Money};
use souk::services::payments::ledger::{self, Account, JournalEntry};
use souk::services::payments::model::{AmountDue, Method, PaymentOutcome, Purpose};
use souk::services::payments::{InitiateInput, OrderPayments};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn eur(a: i64) -> Money {
    Money::new(a, Currency::EUR)
}

fn topup_entry(user: UserId) -> JournalEntry {
    JournalEntry {
        lines: vec![
            (Account::Clearing("card".into()), eur(-100)),
            (Account::Wallet(user), eur(100)),
        ],
        reference: "bench".into(),
        memo: String::new(),
        at: time::OffsetDateTime::now_utc(),
    }
}

/// Every order costs 1 and can be paid any number of times: the bench measures payments.
struct AlwaysDue;

impl OrderPayments for AlwaysDue {
    fn amount_due(
        &self,
        _tx: &redb::WriteTransaction,
        _o: Uuid,
        _p: UserId,
    ) -> souk::Result<AmountDue> {
        Ok(AmountDue {
            amount: eur(1),
            vendor_shares: vec![],
        })
    }
    fn on_payment_result(
        &self,
        _tx: &mut souk::store::Tx<'_>,
        _o: Uuid,
        _r: &PaymentOutcome,
    ) -> souk::Result<()> {
        Ok(())
    }
}

fn ledger_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = souk::Config {
        data_dir: dir.path().to_path_buf(),
        ..souk::Config::default()
    };
    config.payments.fraud.enabled = false;
    let app = souk::App::open(config).unwrap();
    let state = app.state.clone();
    state.payments.register_orders(Arc::new(AlwaysDue)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let user = UserId::new();
    let store = state.store.clone();

    let mut g = c.benchmark_group("ledger");
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    g.bench_function("post_durable_one_at_a_time", |b| {
        b.iter(|| {
            rt.block_on(store.write(move |tx| ledger::post(tx, topup_entry(user))))
                .unwrap();
        })
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("post_durable_64_in_flight", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..64)
                    .map(|_| {
                        let s = store.clone();
                        tokio::spawn(async move {
                            s.write(move |tx| ledger::post(tx, topup_entry(user))).await
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap().unwrap();
                }
            })
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("balance_read", |b| {
        b.iter(|| {
            let rtx = store.read().unwrap();
            ledger::balance(&rtx, &Account::Wallet(user), Currency::EUR).unwrap()
        })
    });
    g.finish();

    let payer = Principal {
        user_id: user,
        role: Role::Customer,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    };
    let pay = |state: souk::app::AppState, payer: Principal| async move {
        let input = InitiateInput {
            purpose: Purpose::Order,
            order_id: Some(Uuid::now_v7()),
            amount: None,
            method: Method::Wallet,
            payment_method_id: None,
            card: None,
            save_method: false,
        };
        souk::services::payments::initiate(&state, &payer, None, input)
            .await
            .unwrap()
    };
    let mut g = c.benchmark_group("payments");
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    g.bench_function("wallet_payment_one_at_a_time", |b| {
        b.iter(|| rt.block_on(pay(state.clone(), payer.clone())))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("wallet_payment_64_in_flight", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..64)
                    .map(|_| tokio::spawn(pay(state.clone(), payer.clone())))
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    g.finish();
    state.store.close();
}

criterion_group!(benches, ledger_benches);
criterion_main!(benches);
