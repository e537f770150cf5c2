//! A wallet checkout places the order and pays it in one store transaction: the buyer
//! sees a paid order or a failed payment with the stock back, never a half of it, and
//! the ledger and the audit chain verify after each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::Shop;
use crate::users::{json, problem};
use reqwest::{Method, StatusCode};
use serde_json::json;
use souk::services::payments::ledger::{self, Account};

fn wallet(s: &Shop, user: &str) -> i64 {
    let rtx = s.m.app.state.store.read().unwrap();
    let a = Account::Wallet(user.parse().unwrap());
    ledger::balance(&rtx, &a, souk::money::Currency::EUR)
        .unwrap()
        .amount
}

#[tokio::test]
async fn a_wallet_checkout_pays_in_the_same_commit_and_never_overspends() {
    let s = Shop::new(10).await;
    // What one knife costs delivered: the first buyer's order says.
    let (first, f) = s.buyer("first@example.com", 100_000).await;
    s.add(&f, &s.knife, 1).await;
    let a = json(s.checkout(&f, None).await).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    assert_eq!(a["payment"]["status"], "succeeded");
    assert!(a["payment_error"].is_null());
    let total = a["order"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(a["payment"]["amount"]["amount"], total);
    assert_eq!(wallet(&s, &first), 100_000 - total);

    // A buyer whose wallet covers exactly one such order: the first is paid, the second
    // fails whole (order payment_failed, stock released) and the wallet ends at zero.
    let (exact, e) = s.buyer("exact@example.com", total).await;
    s.add(&e, &s.knife, 1).await;
    let a = json(s.checkout(&e, None).await).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    assert_eq!(wallet(&s, &exact), 0);
    s.add(&e, &s.knife, 1).await;
    let r = s.checkout(&e, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["payment"]["status"], "failed", "{a}");
    assert_eq!(a["payment"]["failure_reason"], "insufficient_funds");
    assert_eq!(a["order"]["status"], "payment_failed");
    assert_eq!(wallet(&s, &exact), 0);
    // Two knives sold and paid; the failed order's reservation is gone.
    assert_eq!(s.stock(&s.knife), (10, 2));

    // A checkout refused before anything is written (empty cart, bad address) leaves
    // the wallet alone.
    let r = s.checkout(&f, None).await;
    problem(r, StatusCode::CONFLICT, "cart_empty").await;
    s.add(&f, &s.knife, 1).await;
    let r =
        s.m.app
            .request(Method::POST, "/api/v1/orders")
            .bearer_auth(&f)
            .json(
                &json!({"shipping_address": {"name": "", "line1": "x", "city": "y",
            "postal_code": "1", "country": "de"}, "payment_method": "wallet"}),
            )
            .send()
            .await
            .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(wallet(&s, &first), 100_000 - total);
    assert_eq!(s.stock(&s.knife), (10, 2));

    crate::orders::assert_ledger_ok(&s.m.app.state);
    // The audit chain has the payments' entries and verifies (souk check's payment part).
    let rtx = s.m.app.state.store.read().unwrap();
    let (entries, _) = souk::services::payments::audit::page(&rtx, 0, 100).unwrap();
    drop(rtx);
    for action in ["payment.initiated", "payment.captured", "payment.failed"] {
        assert!(entries.iter().any(|e| e.action == action), "{action}");
    }
    crate::payments::assert_ledger_ok(&s.m.app);
}

#[tokio::test]
async fn concurrent_wallet_checkouts_of_many_buyers_all_pay_once() {
    let s = Shop::new(100).await;
    let mut buyers = Vec::new();
    for i in 0..24 {
        let (id, t) = s.buyer(&format!("many{i}@example.com"), 100_000).await;
        s.add(&t, &s.knife, 1).await;
        buyers.push((id, t));
    }
    let s = std::sync::Arc::new(s);
    let mut handles = Vec::new();
    for (_, t) in &buyers {
        let (s, t) = (s.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            let r = s.checkout(&t, None).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            json(r).await
        }));
    }
    let mut totals = Vec::new();
    for h in handles {
        let a = h.await.unwrap();
        assert_eq!(a["order"]["status"], "paid", "{a}");
        totals.push(a["order"]["total"]["amount"].as_i64().unwrap());
    }
    for ((id, _), total) in buyers.iter().zip(totals) {
        assert_eq!(wallet(&s, id), 100_000 - total);
    }
    assert_eq!(s.stock(&s.knife), (100, 24));
    crate::orders::assert_ledger_ok(&s.m.app.state);
    crate::payments::assert_ledger_ok(&s.m.app);
}
