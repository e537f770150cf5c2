//! Read-only answers: a payment as its payer, a vendor or an admin may see it, wallet
//! balances and histories, saved methods, the review queue and the audit trail. Nothing
//! here writes.

use super::ledger::{self, Account, HistoryLine, JournalId};
use super::methods::{self, MethodView};
use super::model::{PaymentId, PaymentView, VendorPaymentView};
use super::{audit, store};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use crate::services::{Page, PageQuery};
use serde::Serialize;

/// A payment seen by its payer or an admin, or by a vendor it concerns (their share only).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PaymentAnswer {
    Full(Box<PaymentView>),
    Vendor(VendorPaymentView),
}

pub fn payment(state: &AppState, p: &Principal, id: PaymentId) -> Result<PaymentAnswer> {
    let rtx = state.store.read()?;
    let pay = store::get(&rtx, id)?.ok_or_else(|| Error::not_found("payment"))?;
    if p.is_admin() || pay.payer == p.user_id {
        return Ok(PaymentAnswer::Full(Box::new(PaymentView::of(
            &pay,
            p.is_admin(),
        ))));
    }
    if let Some(v) = p.vendor_id
        && let Some((_, share)) = pay.vendor_shares.iter().find(|(s, _)| *s == v)
    {
        return Ok(PaymentAnswer::Vendor(VendorPaymentView {
            payment_id: pay.id,
            status: pay.status.as_str(),
            order_id: pay.order_id,
            share: *share,
            method: pay.method,
            created_at: pay.created_at,
        }));
    }
    Err(Error::not_found("payment"))
}

#[derive(Debug, Serialize)]
pub struct WalletBalance {
    /// In the store's wallet currency (zero if never used).
    pub balance: Money,
    /// Every non-zero balance, one per currency.
    pub balances: Vec<Money>,
}

pub fn wallet_balance(state: &AppState, p: &Principal) -> Result<WalletBalance> {
    let cur = Currency::parse(&state.config.payments.currency).unwrap_or(Currency::EUR);
    let rtx = state.store.read()?;
    let account = Account::Wallet(p.user_id);
    Ok(WalletBalance {
        balance: ledger::balance(&rtx, &account, cur)?,
        balances: ledger::balances(&rtx, &account)?,
    })
}

/// The wallet's postings, newest first, each with its journal reference.
pub fn wallet_transactions(
    state: &AppState,
    p: &Principal,
    q: &PageQuery,
) -> Result<Page<HistoryLine>> {
    let limit = q.limit()?;
    let before = q.cursor_uuid()?.map(JournalId);
    let cur = Currency::parse(&state.config.payments.currency).unwrap_or(Currency::EUR);
    let rtx = state.store.read()?;
    let (items, more) = ledger::history(&rtx, &Account::Wallet(p.user_id), cur, before, limit)?;
    let next_cursor = if more {
        items.last().map(|l| l.journal_id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub fn methods(state: &AppState, p: &Principal) -> Result<Page<MethodView>> {
    let rtx = state.store.read()?;
    let items = methods::of_user(&rtx, p.user_id)?
        .iter()
        .map(MethodView::from)
        .collect();
    Ok(Page {
        items,
        next_cursor: None,
    })
}

/// Payments the fraud rules hold, oldest first (admin).
pub fn review_queue(
    state: &AppState,
    admin: &Principal,
    q: &PageQuery,
) -> Result<Page<PaymentView>> {
    admin.require_admin()?;
    let limit = q.limit()?;
    let after = q.cursor_uuid()?.map(PaymentId);
    let rtx = state.store.read()?;
    let (list, more) = store::in_review(&rtx, after, limit)?;
    let next_cursor = if more {
        list.last().map(|p| p.id.to_string())
    } else {
        None
    };
    Ok(Page {
        items: list.iter().map(|p| PaymentView::of(p, true)).collect(),
        next_cursor,
    })
}

/// The audit trail, oldest first; the cursor is the last sequence number seen (admin).
pub fn audit_trail(
    state: &AppState,
    admin: &Principal,
    q: &PageQuery,
) -> Result<Page<audit::AuditEntry>> {
    admin.require_admin()?;
    let limit = q.limit()?;
    let after = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse::<u64>().map_err(|_| {
            Error::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this list gave out",
            )
        })?,
    };
    let rtx = state.store.read()?;
    let (items, more) = audit::page(&rtx, after, limit)?;
    let next_cursor = if more {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
