//! Small helpers for byte-keyed tables holding codec-encoded values, usable with a read or
//! a write transaction. A table that was never written reads as empty, so a fresh database
//! needs no creation step. Knows nothing of what the values mean.

use crate::error::Result;
use crate::store::codec;
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub type BytesTable = TableDefinition<'static, &'static [u8], &'static [u8]>;
pub type IndexTable = TableDefinition<'static, &'static [u8], ()>;

/// Opens a table for reading; `None` if it does not exist yet.
pub fn open_ro<K: redb::Key + 'static, V: redb::Value + 'static>(
    rtx: &ReadTransaction,
    def: TableDefinition<'static, K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>> {
    match rtx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn get<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<T>> {
    match t.get(key)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn read<T: DeserializeOwned>(
    rtx: &ReadTransaction,
    def: BytesTable,
    key: &[u8],
) -> Result<Option<T>> {
    match open_ro(rtx, def)? {
        Some(t) => get(&t, key),
        None => Ok(None),
    }
}

pub fn read_in<T: DeserializeOwned>(
    wtx: &WriteTransaction,
    def: BytesTable,
    key: &[u8],
) -> Result<Option<T>> {
    let t = wtx.open_table(def)?;
    get(&t, key)
}

pub fn put<T: Serialize>(
    wtx: &WriteTransaction,
    def: BytesTable,
    key: &[u8],
    value: &T,
) -> Result<()> {
    let bytes = codec::encode(value)?;
    wtx.open_table(def)?.insert(key, bytes.as_slice())?;
    Ok(())
}

pub fn delete(wtx: &WriteTransaction, def: BytesTable, key: &[u8]) -> Result<()> {
    wtx.open_table(def)?.remove(key)?;
    Ok(())
}

/// Keys of an index table that start with `prefix` (e.g. a user id), in key order.
pub fn prefixed_keys(
    t: &impl ReadableTable<&'static [u8], ()>,
    prefix: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for item in t.range::<&[u8]>(prefix..)? {
        let (k, _) = item?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        out.push(k.to_vec());
    }
    Ok(out)
}

pub fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}
