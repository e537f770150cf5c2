//! The payment service's types: payments, their status and method, what the API shows of
//! them, and what the order service gets told. No storage and no HTTP here.

use crate::auth::{UserId, VendorId};
use crate::money::Money;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

crate::id_type!(
    /// One payment (a wallet top-up or the payment of an order).
    PaymentId
);
crate::id_type!(
    /// A saved payment method (a tokenised card).
    PaymentMethodId
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Wallet,
    Card,
    Hosted,
    Cod,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Wallet => "wallet",
            Method::Card => "card",
            Method::Hosted => "hosted",
            Method::Cod => "cod",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    WalletTopup,
    Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded; the provider is being asked.
    Processing,
    /// Waiting for a second step from the payer (3-D Secure style code).
    RequiresConfirmation,
    /// Waiting for the payer to finish on the provider's page.
    RequiresRedirect,
    /// Cash on delivery: waiting for an admin or vendor to mark it paid.
    AwaitingCash,
    /// Held by the fraud rules for an admin.
    InReview,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Processing => "processing",
            Status::RequiresConfirmation => "requires_confirmation",
            Status::RequiresRedirect => "requires_redirect",
            Status::AwaitingCash => "awaiting_cash",
            Status::InReview => "in_review",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

/// What the payer must do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// POST /api/v1/payments/confirm with the code the card issuer asked for.
    Confirm { message: String },
    /// Send the buyer to `url`; the provider calls back when done.
    Redirect { url: String },
    /// Wait for an admin or the vendor to mark the payment paid.
    AwaitCash,
    /// Wait for an admin's review.
    AwaitReview,
}

/// The fraud rules' verdict on one payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudVerdict {
    pub action: FraudAction,
    pub score: u32,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudAction {
    Allow,
    Review,
    Block,
}

/// The brand and last four digits of a card: all of a card number we ever keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardSummary {
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub payer: UserId,
    pub purpose: Purpose,
    #[serde(default)]
    pub order_id: Option<Uuid>,
    pub amount: Money,
    pub method: Method,
    pub status: Status,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    /// Refunded so far; never more than `amount`.
    pub refunded: i64,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub card: Option<CardSummary>,
    #[serde(default)]
    pub payment_method_id: Option<PaymentMethodId>,
    /// The gateway's id for the charge, for confirm and refund.
    #[serde(default)]
    pub provider_ref: Option<String>,
    /// The card token while the charge is pending (review), sealed like saved methods.
    #[serde(default)]
    pub sealed_token: Option<super::methods::Sealed>,
    /// Keyed fingerprint of the card, for the fraud rules.
    #[serde(default)]
    pub card_key: Option<String>,
    #[serde(default)]
    pub fraud: Option<FraudVerdict>,
    /// The vendors an order payment concerns and their shares (they may see those).
    #[serde(default)]
    pub vendor_shares: Vec<(VendorId, Money)>,
    /// Paid through the built-in test gateway: no real money moved.
    #[serde(default)]
    pub test_mode: bool,
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Journal entries this payment posted (capture, refunds).
    #[serde(default)]
    pub journal: Vec<super::ledger::JournalId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Payment {
    pub fn refundable(&self) -> i64 {
        if self.status == Status::Succeeded {
            self.amount.amount - self.refunded
        } else {
            0
        }
    }
}

/// A payment as the API shows it to its payer and admins.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    pub payment_id: PaymentId,
    pub status: &'static str,
    pub purpose: Purpose,
    pub order_id: Option<Uuid>,
    pub amount: Money,
    pub refunded: Money,
    pub method: Method,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method_id: Option<PaymentMethodId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraud: Option<FraudVerdict>,
    pub test_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'static str>,
    pub journal: Vec<super::ledger::JournalId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

pub const TEST_NOTICE: &str = "test gateway: no real money moved";

impl PaymentView {
    /// The payer's and admins' view; the fraud verdict only for admins.
    pub fn of(p: &Payment, admin: bool) -> PaymentView {
        PaymentView {
            payment_id: p.id,
            status: p.status.as_str(),
            purpose: p.purpose,
            order_id: p.order_id,
            amount: p.amount,
            refunded: Money::new(p.refunded, p.amount.currency),
            method: p.method,
            next_action: p.next_action.clone(),
            failure_reason: p.failure_reason.clone(),
            card: p.card.clone(),
            payment_method_id: p.payment_method_id,
            fraud: if admin { p.fraud.clone() } else { None },
            test_mode: p.test_mode,
            notice: p.test_mode.then_some(TEST_NOTICE),
            journal: p.journal.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// What a vendor sees of an order payment: its own share and the status, nothing of the payer.
#[derive(Debug, Clone, Serialize)]
pub struct VendorPaymentView {
    pub payment_id: PaymentId,
    pub status: &'static str,
    pub order_id: Option<Uuid>,
    pub share: Money,
    pub method: Method,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What an order is owed, as the order service answers [`super::OrderPayments::amount_due`].
#[derive(Debug, Clone, PartialEq)]
pub struct AmountDue {
    pub amount: Money,
    /// Each vendor's share, so that vendors can see the payments that concern them.
    pub vendor_shares: Vec<(VendorId, Money)>,
}

/// What the order service is told, in the same transaction as the payment's change.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentOutcome {
    /// Captured: the money sits in `escrow:<order>` for the order service to share out.
    Succeeded {
        payment_id: PaymentId,
        amount: Money,
    },
    Failed {
        payment_id: PaymentId,
        reason: String,
    },
    /// Cash on delivery accepted: the order may proceed unpaid.
    Deferred { payment_id: PaymentId },
    /// Money went back to the payer out of `refunds`; the order service recovers it.
    Refunded {
        payment_id: PaymentId,
        amount: Money,
    },
}
