//! Payments, wallets and the money ledger: the commands and queries behind
//! `/api/v1/payments`, `/wallets` and `/payment-methods`, with no HTTP types. It owns
//! money movement (through `ledger`), the providers, fraud scoring and the audit chain;
//! it never decides what an order is worth: the order service answers that through
//! [`OrderPayments`], registered once in [`PaymentsState`].

pub mod api;
pub mod audit;
pub mod completions;
pub mod flows;
pub mod fraud;
pub mod gateway;
pub mod intake;
pub mod ledger;
pub mod methods;
pub mod model;
pub mod providers;
pub mod queries;
pub mod refunds;
pub mod saved_methods;
pub mod store;

use crate::auth::UserId;
use crate::clock::Clock;
use crate::config::Config;
use crate::connectors::breaker::Breaker;
use crate::error::{Error, Result};
use crate::store::Tx;
use model::{AmountDue, Method, PaymentOutcome};
use providers::{CardProvider, CodProvider, HostedProvider, PaymentProvider, WalletProvider};
use redb::WriteTransaction;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

pub use flows::{InitiateInput, LocalPayment, confirm, initiate};
pub use methods::rotate_field_key;
pub use refunds::{RefundInput, refund};

/// How the order service plugs in. Both calls run inside the payment's own write
/// transaction, so an order and its payment always agree.
pub trait OrderPayments: Send + Sync {
    /// What `payer` owes for `order_id` now. `NotFound` if the order is not the payer's,
    /// a `Conflict` if it cannot be paid (already paid, cancelled).
    fn amount_due(&self, tx: &WriteTransaction, order_id: Uuid, payer: UserId)
    -> Result<AmountDue>;
    /// Told what happened to a payment of the order. On `Succeeded` the money sits in
    /// `ledger::Account::OrderEscrow(order_id)`, for the order service to share out; on
    /// `Refunded` it came out of `ledger::Account::Refunds`, for it to recover.
    fn on_payment_result(
        &self,
        tx: &mut Tx<'_>,
        order_id: Uuid,
        outcome: &PaymentOutcome,
    ) -> Result<()>;
}

/// What the payment service keeps for the life of the process.
pub struct PaymentsState {
    orders: OnceLock<Arc<dyn OrderPayments>>,
    pub card: Option<Arc<CardProvider>>,
    pub hosted: Option<Arc<HostedProvider>>,
    pub field_keys: methods::FieldKeys,
    pub audit_key: audit::AuditKey,
}

impl PaymentsState {
    /// Loads (or creates) the field-encryption and audit keys and sets up the providers
    /// the config enables.
    pub fn new(config: &Config, clock: &Clock) -> Result<PaymentsState> {
        let pc = &config.payments;
        let keys_dir = config.keys_dir();
        let card = pc.test_gateway.then(|| {
            Arc::new(CardProvider {
                gateway: Arc::new(gateway::TestGateway),
                breaker: Arc::new(Breaker::new(
                    "card gateway",
                    pc.breaker_failures,
                    time::Duration::seconds(pc.breaker_open_secs as i64),
                    pc.breaker_half_open_tries,
                    clock.clone(),
                )),
                timeout: std::time::Duration::from_secs(pc.gateway_timeout_secs),
            })
        });
        let hosted = match (&pc.hosted_url, &pc.hosted_secret) {
            (url, Some(secret)) if !url.is_empty() => Some(Arc::new(HostedProvider {
                url: url.clone(),
                secret: secret.expose().to_string(),
                public_url: config.public_url(),
            })),
            _ => None,
        };
        Ok(PaymentsState {
            orders: OnceLock::new(),
            card,
            hosted,
            field_keys: methods::FieldKeys::load(&keys_dir, clock.now())?,
            audit_key: audit::AuditKey::load_or_create(&keys_dir)?,
        })
    }

    /// Where the order service registers itself, once, at start-up.
    pub fn register_orders(&self, orders: Arc<dyn OrderPayments>) -> Result<()> {
        self.orders
            .set(orders)
            .map_err(|_| Error::internal("order payments registered twice"))
    }

    pub fn orders(&self) -> Option<&Arc<dyn OrderPayments>> {
        self.orders.get()
    }

    /// The provider for a method, or a field error naming why it cannot be used.
    pub fn provider(&self, method: Method) -> Result<Arc<dyn PaymentProvider>> {
        let unavailable = |what: &str| {
            Error::invalid(
                "method",
                "method_unavailable",
                format!("{what} is not enabled on this store"),
            )
        };
        Ok(match method {
            Method::Wallet => Arc::new(WalletProvider),
            Method::Cod => Arc::new(CodProvider),
            Method::Card => self
                .card
                .clone()
                .ok_or_else(|| unavailable("card payment"))?,
            Method::Hosted => self
                .hosted
                .clone()
                .ok_or_else(|| unavailable("the hosted payment page"))?,
        })
    }
}

/// `souk check`: the ledger balances, every account equals its postings, and the audit
/// chain verifies (naming its first broken entry).
pub fn check(
    config: &Config,
    rtx: &redb::ReadTransaction,
    report: &mut crate::check::Report,
) -> Result<()> {
    ledger::verify(rtx, report)?;
    let key = audit::AuditKey::load(&config.keys_dir())?;
    let Some(key) = key else {
        let (n, _) = audit::page(rtx, 0, 1).map(|(v, more)| (v.len(), more))?;
        if n == 0 {
            report.pass("payments audit: empty");
        } else {
            report.fail("payments audit: entries exist but keys/payments-audit.key is missing");
        }
        return Ok(());
    };
    match audit::first_broken(rtx, &key)? {
        (n, None) => report.pass(format!("payments audit: chain of {n} entries verifies")),
        (_, Some((seq, why))) => report.fail(format!(
            "payments audit: chain broken at entry {seq}: {why}"
        )),
    }
    Ok(())
}
