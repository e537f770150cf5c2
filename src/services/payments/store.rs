//! The payment tables' reads and writes, always in the caller's transaction: payments,
//! the review queue and the hosted gateway's seen event ids. No rules live here.

use super::model::{Payment, PaymentId};
use crate::auth::kv::open_ro;
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::tables::{
    PAYMENT_ID_TO_PAYMENT, PROVIDER_EVENT_TO_PAYMENT_ID, REVIEW_PAYMENT_ID_TO_UNIT,
};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

pub fn get(rtx: &ReadTransaction, id: PaymentId) -> Result<Option<Payment>> {
    let Some(t) = open_ro(rtx, PAYMENT_ID_TO_PAYMENT)? else {
        return Ok(None);
    };
    t.get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

pub fn get_in(tx: &WriteTransaction, id: PaymentId) -> Result<Option<Payment>> {
    tx.open_table(PAYMENT_ID_TO_PAYMENT)?
        .get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

/// Writes a payment and keeps the review queue in step with its status.
pub fn put(tx: &WriteTransaction, p: &Payment) -> Result<()> {
    tx.open_table(PAYMENT_ID_TO_PAYMENT)?
        .insert(p.id.to_bytes().as_slice(), codec::encode(p)?.as_slice())?;
    let mut review = tx.open_table(REVIEW_PAYMENT_ID_TO_UNIT)?;
    if p.status == super::model::Status::InReview {
        review.insert(p.id.to_bytes().as_slice(), ())?;
    } else {
        review.remove(p.id.to_bytes().as_slice())?;
    }
    Ok(())
}

/// Payments held for review, oldest first, after `after`.
pub fn in_review(
    rtx: &ReadTransaction,
    after: Option<PaymentId>,
    limit: usize,
) -> Result<(Vec<Payment>, bool)> {
    let Some(t) = open_ro(rtx, REVIEW_PAYMENT_ID_TO_UNIT)? else {
        return Ok((Vec::new(), false));
    };
    let lo = after.map(|a| a.to_bytes()).unwrap_or([0u8; 16]);
    let mut out = Vec::new();
    for row in t.range(lo.as_slice()..)? {
        let (k, _) = row?;
        let id: [u8; 16] = k
            .value()
            .try_into()
            .map_err(|_| Error::Storage("corrupt review key".into()))?;
        if after.is_some() && id == lo {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        if let Some(p) = get(rtx, PaymentId::from_bytes(id))? {
            out.push(p);
        }
    }
    Ok((out, false))
}

/// Records a provider event id; false if it was seen before.
pub fn claim_provider_event(
    tx: &WriteTransaction,
    event_id: &str,
    payment: PaymentId,
) -> Result<bool> {
    let mut t = tx.open_table(PROVIDER_EVENT_TO_PAYMENT_ID)?;
    if t.get(event_id)?.is_some() {
        return Ok(false);
    }
    t.insert(event_id, payment.to_bytes().as_slice())?;
    Ok(true)
}
