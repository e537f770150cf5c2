//! The vendors table. Functions take the caller's transaction.

use super::model::Vendor;
use crate::auth::{VendorId, kv};
use crate::error::Result;
use crate::store::tables::VENDOR_ID_TO_VENDOR;
use redb::{ReadTransaction, WriteTransaction};

pub fn get(rtx: &ReadTransaction, id: VendorId) -> Result<Option<Vendor>> {
    kv::read(rtx, VENDOR_ID_TO_VENDOR, &id.to_bytes())
}

pub fn get_in(wtx: &WriteTransaction, id: VendorId) -> Result<Option<Vendor>> {
    kv::read_in(wtx, VENDOR_ID_TO_VENDOR, &id.to_bytes())
}

pub fn put(wtx: &WriteTransaction, v: &Vendor) -> Result<()> {
    kv::put(wtx, VENDOR_ID_TO_VENDOR, &v.id.to_bytes(), v)
}

/// Vendors in creation order after `after`, at most `limit`, and whether more remain.
pub fn page(
    rtx: &ReadTransaction,
    after: Option<VendorId>,
    limit: usize,
) -> Result<(Vec<Vendor>, bool)> {
    let Some(t) = kv::open_ro(rtx, VENDOR_ID_TO_VENDOR)? else {
        return Ok((Vec::new(), false));
    };
    let start = after.map(|a| a.to_bytes());
    let iter = match &start {
        Some(s) => t.range::<&[u8]>((
            std::ops::Bound::Excluded(s.as_slice()),
            std::ops::Bound::Unbounded,
        ))?,
        None => t.range::<&[u8]>(..)?,
    };
    let mut out = Vec::new();
    for item in iter {
        let (_, v) = item?;
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(crate::store::codec::decode(v.value())?);
    }
    Ok((out, false))
}
