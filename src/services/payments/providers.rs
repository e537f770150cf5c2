//! The `PaymentProvider` trait and its four providers: wallet (pays from the customer's
//! balance inside the payment's transaction), card (through a `CardGateway`, guarded by a
//! timeout and a circuit breaker), hosted (redirect to a provider, completed by a signed
//! callback) and cod (an admin or vendor marks it paid). Providers decide what happened;
//! the flows in `flows.rs` record it and post to the ledger.

use super::gateway::{CardGateway, Charge};
use super::ledger::Account;
use super::model::{Method, NextAction, Payment, Status};
use crate::connectors::breaker::Breaker;
use crate::error::{Error, Result};
use crate::money::Money;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// What a provider says happened to a payment.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The money moved: post the capture entry from the provider's account.
    Captured {
        provider_ref: Option<String>,
    },
    Declined {
        reason: String,
    },
    /// The payment waits for someone: the payer, the provider, or a person with cash.
    Waiting {
        status: Status,
        action: NextAction,
        provider_ref: Option<String>,
    },
}

pub trait PaymentProvider: Send + Sync {
    fn method(&self) -> Method;
    /// Where captured money comes from and refunds go back to.
    fn account(&self, p: &Payment) -> Account;
    /// For providers that need no outside call: the step, decided inside the payment's
    /// transaction. `None` means call [`PaymentProvider::start`] outside it.
    fn start_local(&self, p: &Payment) -> Option<Step>;
    /// Asks the outside party (a gateway) to take the payment. `token` is the card token.
    fn start<'a>(&'a self, p: &'a Payment, token: &'a str) -> BoxFuture<'a, Result<Step>>;
    /// The payer's second step.
    fn confirm<'a>(&'a self, p: &'a Payment, code: &'a str) -> BoxFuture<'a, Result<Step>>;
    /// Gives money back through the outside party; `None` if nothing needs calling.
    fn refund<'a>(&'a self, p: &'a Payment, amount: Money) -> Option<BoxFuture<'a, Result<()>>>;
    /// True when this provider moves no real money (the test gateway).
    fn test_mode(&self) -> bool {
        false
    }
}

pub struct WalletProvider;

impl PaymentProvider for WalletProvider {
    fn method(&self) -> Method {
        Method::Wallet
    }
    fn account(&self, p: &Payment) -> Account {
        Account::Wallet(p.payer)
    }
    fn start_local(&self, _p: &Payment) -> Option<Step> {
        // The balance check and the debit happen when the capture is posted, in the same
        // transaction, so two payments can never spend the same balance.
        Some(Step::Captured { provider_ref: None })
    }
    fn start<'a>(&'a self, _p: &'a Payment, _t: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async { Ok(Step::Captured { provider_ref: None }) })
    }
    fn confirm<'a>(&'a self, _p: &'a Payment, _c: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async { Err(nothing_to_confirm()) })
    }
    fn refund<'a>(&'a self, _p: &'a Payment, _a: Money) -> Option<BoxFuture<'a, Result<()>>> {
        None
    }
}

fn nothing_to_confirm() -> Error {
    Error::conflict(
        "not_awaiting_confirmation",
        "this payment is not waiting for a confirmation",
    )
}

/// Cards through a gateway, each call under a timeout and the breaker.
pub struct CardProvider {
    pub gateway: Arc<dyn CardGateway>,
    pub breaker: Arc<Breaker>,
    pub timeout: Duration,
}

impl CardProvider {
    /// Runs one gateway call under the breaker and the timeout. Only unavailability and
    /// timeouts count as failures: a decline is the gateway working.
    pub async fn guarded<T>(&self, call: BoxFuture<'_, Result<T>>) -> Result<T> {
        self.breaker.acquire().map_err(|open| Error::Unavailable {
            message: "the card gateway is unavailable; try again later".into(),
            retry_after_secs: open.retry_after_secs,
        })?;
        let r = match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                message: "the card gateway did not answer in time".into(),
                retry_after_secs: 5,
            }),
        };
        self.breaker.record(!matches!(
            r,
            Err(Error::Unavailable { .. }) | Err(Error::Internal(_))
        ));
        r
    }

    fn step(charge: Charge) -> Step {
        match charge {
            Charge::Succeeded { charge_id } => Step::Captured {
                provider_ref: Some(charge_id),
            },
            Charge::Declined { reason } => Step::Declined { reason },
            Charge::RequiresConfirmation { charge_id, message } => Step::Waiting {
                status: Status::RequiresConfirmation,
                action: NextAction::Confirm { message },
                provider_ref: Some(charge_id),
            },
        }
    }
}

impl PaymentProvider for CardProvider {
    fn method(&self) -> Method {
        Method::Card
    }
    fn account(&self, _p: &Payment) -> Account {
        Account::Clearing(self.gateway.name().into())
    }
    fn start_local(&self, _p: &Payment) -> Option<Step> {
        None
    }
    fn start<'a>(&'a self, p: &'a Payment, token: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async move {
            let charge = self
                .guarded(self.gateway.charge(token, p.amount, p.id))
                .await?;
            Ok(Self::step(charge))
        })
    }
    fn confirm<'a>(&'a self, p: &'a Payment, code: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async move {
            let charge_id = p.provider_ref.as_deref().ok_or_else(nothing_to_confirm)?;
            let charge = self.guarded(self.gateway.confirm(charge_id, code)).await?;
            Ok(Self::step(charge))
        })
    }
    fn refund<'a>(&'a self, p: &'a Payment, amount: Money) -> Option<BoxFuture<'a, Result<()>>> {
        let charge_id = p.provider_ref.as_deref()?;
        Some(Box::pin(async move {
            self.guarded(self.gateway.refund(charge_id, amount)).await
        }))
    }
    fn test_mode(&self) -> bool {
        self.gateway.test_mode()
    }
}

/// A generic redirect gateway: the payer pays on the provider's page, the provider calls
/// back with a signed message (see `gateway::verify_callback`).
pub struct HostedProvider {
    pub url: String,
    pub secret: String,
    pub public_url: String,
}

impl PaymentProvider for HostedProvider {
    fn method(&self) -> Method {
        Method::Hosted
    }
    fn account(&self, _p: &Payment) -> Account {
        Account::Clearing("hosted".into())
    }
    fn start_local(&self, p: &Payment) -> Option<Step> {
        let return_url = format!("{}/api/v1/payments/{}", self.public_url, p.id);
        Some(Step::Waiting {
            status: Status::RequiresRedirect,
            action: NextAction::Redirect {
                url: super::gateway::hosted_redirect_url(
                    &self.url,
                    &self.secret,
                    p.id,
                    p.amount,
                    &return_url,
                ),
            },
            provider_ref: Some(p.id.to_string()),
        })
    }
    fn start<'a>(&'a self, p: &'a Payment, _t: &'a str) -> BoxFuture<'a, Result<Step>> {
        let step = self.start_local(p);
        Box::pin(async move { step.ok_or_else(|| Error::internal("hosted start")) })
    }
    fn confirm<'a>(&'a self, _p: &'a Payment, _c: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async { Err(nothing_to_confirm()) })
    }
    fn refund<'a>(&'a self, _p: &'a Payment, _a: Money) -> Option<BoxFuture<'a, Result<()>>> {
        // The provider's refund API differs per provider; the refund is recorded here and
        // carried out in the provider's dashboard (the audit trail says so).
        None
    }
}

/// Cash on delivery (or any manual method): nothing moves until someone marks it paid.
pub struct CodProvider;

impl PaymentProvider for CodProvider {
    fn method(&self) -> Method {
        Method::Cod
    }
    fn account(&self, _p: &Payment) -> Account {
        Account::Clearing("cod".into())
    }
    fn start_local(&self, _p: &Payment) -> Option<Step> {
        Some(Step::Waiting {
            status: Status::AwaitingCash,
            action: NextAction::AwaitCash,
            provider_ref: None,
        })
    }
    fn start<'a>(&'a self, p: &'a Payment, _t: &'a str) -> BoxFuture<'a, Result<Step>> {
        let step = self.start_local(p);
        Box::pin(async move { step.ok_or_else(|| Error::internal("cod start")) })
    }
    fn confirm<'a>(&'a self, _p: &'a Payment, _c: &'a str) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async { Err(nothing_to_confirm()) })
    }
    fn refund<'a>(&'a self, _p: &'a Payment, _a: Money) -> Option<BoxFuture<'a, Result<()>>> {
        None
    }
}
