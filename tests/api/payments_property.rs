//! A property test of the ledger through the payment commands: seeded random sequences
//! of top-ups, wallet payments and refunds; after every step the journal balances, the
//! stored balances equal the postings, and each wallet holds what the model says.

use crate::helpers::spawn_app_with;
use crate::payments::{FakeOrders, assert_ledger_ok, eur, pay_config};
use rand::{Rng, SeedableRng};
use souk::auth::{Principal, Role, UserId};
use souk::services::payments::gateway::CardInput;
use souk::services::payments::ledger::{self, Account};
use souk::services::payments::model::{Method, Purpose, Status};
use souk::services::payments::{InitiateInput, RefundInput, flows, refunds};

fn principal(role: Role) -> Principal {
    Principal {
        user_id: UserId::new(),
        role,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    }
}

#[tokio::test]
async fn random_top_ups_payments_and_refunds_keep_the_ledger_balanced() {
    let app = spawn_app_with(pay_config).await;
    let orders = FakeOrders::install(&app);
    let admin = principal(Role::Admin);
    let users: Vec<Principal> = (0..3).map(|_| principal(Role::Customer)).collect();
    let mut expected = vec![0i64; users.len()];
    // Succeeded payments: (payment id, payer index, refundable, is_topup).
    let mut paid: Vec<(souk::services::payments::model::PaymentId, usize, i64, bool)> = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x50_0c);
    let card = CardInput {
        number: "4242424242424242".into(),
        exp_month: 12,
        exp_year: 2040,
        cvc: "123".into(),
    };
    for step in 0..150 {
        let u = rng.random_range(0..users.len());
        let who = &users[u];
        match rng.random_range(0..3) {
            0 => {
                let amount = rng.random_range(100..5000);
                let input = InitiateInput {
                    purpose: Purpose::WalletTopup,
                    order_id: None,
                    amount: Some(eur(amount)),
                    method: Method::Card,
                    payment_method_id: None,
                    card: Some(card.clone()),
                    save_method: false,
                };
                let p = flows::initiate(&app.state, who, None, input).await.unwrap();
                assert_eq!(p.status, Status::Succeeded);
                expected[u] += amount;
                paid.push((p.id, u, amount, true));
            }
            1 => {
                let amount = rng.random_range(1..3000);
                let order = orders.add(&who.user_id.to_string(), amount);
                let input = InitiateInput {
                    purpose: Purpose::Order,
                    order_id: Some(order),
                    amount: None,
                    method: Method::Wallet,
                    payment_method_id: None,
                    card: None,
                    save_method: false,
                };
                let p = flows::initiate(&app.state, who, None, input).await.unwrap();
                if expected[u] >= amount {
                    assert_eq!(p.status, Status::Succeeded, "step {step}");
                    expected[u] -= amount;
                    paid.push((p.id, u, amount, false));
                } else {
                    assert_eq!(
                        p.failure_reason.as_deref(),
                        Some("insufficient_funds"),
                        "step {step}"
                    );
                }
            }
            _ if !paid.is_empty() => {
                let i = rng.random_range(0..paid.len());
                let (id, payer, refundable, topup) = paid[i];
                let amount = rng.random_range(1..=refundable + 50);
                let r = refunds::refund(
                    &app.state,
                    &admin,
                    id,
                    RefundInput {
                        amount: Some(eur(amount)),
                        reason: "property".into(),
                    },
                )
                .await;
                let allowed = amount <= refundable && (!topup || expected[payer] >= amount);
                match r {
                    Ok(_) => {
                        assert!(
                            allowed,
                            "step {step}: refund {amount} of {refundable} accepted"
                        );
                        expected[payer] += if topup { -amount } else { amount };
                        paid[i].2 -= amount;
                        if paid[i].2 == 0 {
                            paid.remove(i);
                        }
                    }
                    Err(e) => {
                        assert!(!allowed, "step {step}: refund refused: {e}");
                        assert!(
                            ["refund_exceeds_captured", "insufficient_funds"].contains(&e.code()),
                            "{e}"
                        );
                    }
                }
            }
            _ => {}
        }
        assert_ledger_ok(&app);
        let rtx = app.state.store.read().unwrap();
        for (k, who) in users.iter().enumerate() {
            let account = Account::Wallet(who.user_id);
            let bal = ledger::balance(&rtx, &account, eur(0).currency).unwrap();
            assert_eq!(bal.amount, expected[k], "step {step}: wallet {k}");
            let (lines, more) =
                ledger::history(&rtx, &account, eur(0).currency, None, 10_000).unwrap();
            assert!(!more);
            assert_eq!(
                lines.iter().map(|l| l.amount.amount).sum::<i64>(),
                bal.amount
            );
            assert!(bal.amount >= 0);
        }
    }
}
