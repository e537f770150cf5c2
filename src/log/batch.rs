//! How the log is stored: each fjall entry is a batch of consecutive records of one
//! partition, LZ4-compressed, keyed by its first offset (Kafka's record batches). One
//! entry per partition per append instead of one per event cuts fjall's per-entry work,
//! and the JSON compresses about five to one.
//!
//! Key: partition (u16 BE) ++ base offset (u64 BE), so a partition's batches sort in
//! offset order. Value: [`FORMAT`] ++ append time (unix ms, i64 BE) ++ record count
//! (u32 BE) ++ uncompressed length (u32 BE) ++ an LZ4 block of the records, each a u32 BE
//! length and the envelope's JSON.

use crate::error::{Error, Result};

pub(crate) const KEY_LEN: usize = 2 + 8;
/// The layout described above; a new layout gets a new number.
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4 + 4;
/// A batch is closed once its records reach this size uncompressed.
const TARGET_BYTES: usize = 256 * 1024;
/// The largest event (as JSON) the log accepts.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;
/// The largest uncompressed batch a reader inflates: a guard against a corrupt length.
const MAX_BATCH_BYTES: usize = TARGET_BYTES + 4 + MAX_RECORD_BYTES;

pub(crate) fn key(partition: u16, base: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..2].copy_from_slice(&partition.to_be_bytes());
    k[2..].copy_from_slice(&base.to_be_bytes());
    k
}

pub(crate) fn parse_key(k: &[u8]) -> Result<(u16, u64)> {
    let k: &[u8; KEY_LEN] = k
        .try_into()
        .map_err(|_| Error::Storage(format!("log: malformed batch key {}", hex::encode(k))))?;
    let [p0, p1, o @ ..] = *k;
    Ok((u16::from_be_bytes([p0, p1]), u64::from_be_bytes(o)))
}

/// What a batch's header says, read without inflating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub appended_ms: i64,
    pub count: u32,
    raw_len: u32,
}

fn be<const N: usize>(v: &[u8], at: usize) -> Result<[u8; N]> {
    v.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::Storage("log: truncated batch".into()))
}

pub(crate) fn header(v: &[u8]) -> Result<Header> {
    match v.first() {
        Some(&FORMAT) => {}
        Some(f) => return Err(Error::Storage(format!("log: unknown batch format {f}"))),
        None => return Err(Error::Storage("log: empty batch".into())),
    }
    Ok(Header {
        appended_ms: i64::from_be_bytes(be(v, 1)?),
        count: u32::from_be_bytes(be(v, 9)?),
        raw_len: u32::from_be_bytes(be(v, 13)?),
    })
}

/// Collects one partition's records for one batch.
#[derive(Default)]
pub(crate) struct Builder {
    raw: Vec<u8>,
    count: u32,
}

impl Builder {
    pub fn push(&mut self, record: &[u8]) {
        // Records are at most MAX_RECORD_BYTES, checked by the caller.
        self.raw
            .extend_from_slice(&(record.len() as u32).to_be_bytes());
        self.raw.extend_from_slice(record);
        self.count += 1;
    }

    pub fn is_full(&self) -> bool {
        self.raw.len() >= TARGET_BYTES
    }

    pub fn finish(self, appended_ms: i64) -> Vec<u8> {
        let packed = lz4_flex::block::compress(&self.raw);
        let mut v = Vec::with_capacity(HEADER_LEN + packed.len());
        v.push(FORMAT);
        v.extend_from_slice(&appended_ms.to_be_bytes());
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&(self.raw.len() as u32).to_be_bytes());
        v.extend_from_slice(&packed);
        v
    }
}

/// One stored batch, inflated.
pub(crate) struct Batch {
    pub base: u64,
    /// Each record's JSON, in offset order from `base`.
    records: Vec<(usize, usize)>,
    raw: Vec<u8>,
}

impl Batch {
    pub fn decode(k: &[u8], v: &[u8]) -> Result<Batch> {
        let (partition, base) = parse_key(k)?;
        let h = header(v)?;
        let corrupt = |what: &str| {
            Error::Storage(format!("log: batch {partition}/{base} is corrupt: {what}"))
        };
        let raw_len = h.raw_len as usize;
        if raw_len > MAX_BATCH_BYTES {
            return Err(corrupt("impossible length"));
        }
        let raw = lz4_flex::block::decompress(&v[HEADER_LEN..], raw_len)
            .map_err(|e| corrupt(&e.to_string()))?;
        let mut records = Vec::with_capacity(h.count as usize);
        let mut at = 0;
        while at < raw.len() {
            let len = u32::from_be_bytes(be(&raw, at)?) as usize;
            let start = at + 4;
            if start + len > raw.len() {
                return Err(corrupt("record overruns the batch"));
            }
            records.push((start, len));
            at = start + len;
        }
        if records.len() != h.count as usize {
            return Err(corrupt("record count"));
        }
        Ok(Batch { base, records, raw })
    }

    /// The offset after this batch's last record.
    pub fn end(&self) -> u64 {
        self.base + self.records.len() as u64
    }

    /// `(offset, json)` of each record.
    pub fn records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, &(start, len))| (self.base + i as u64, &self.raw[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_and_is_smaller() {
        let mut b = Builder::default();
        let rec = br#"{"id":"0199c0de-0000-7000-8000-000000000001","type":"Order.Completed"}"#;
        for _ in 0..50 {
            b.push(rec);
        }
        let v = b.finish(1234);
        assert!(v.len() < 50 * rec.len() / 3, "{}", v.len());
        let h = header(&v).unwrap();
        assert_eq!((h.appended_ms, h.count), (1234, 50));
        let batch = Batch::decode(&key(3, 100), &v).unwrap();
        assert_eq!((batch.base, batch.end()), (100, 150));
        let offsets: Vec<u64> = batch.records().map(|(o, _)| o).collect();
        assert_eq!(offsets, (100..150).collect::<Vec<_>>());
        assert!(batch.records().all(|(_, r)| r == rec));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut b = Builder::default();
        b.push(b"{}");
        let v = b.finish(0);
        for cut in 0..v.len() {
            assert!(
                Batch::decode(&key(0, 0), &v[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = v.clone();
        bad[13..17].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Batch::decode(&key(0, 0), &bad).is_err());
        assert!(parse_key(b"short").is_err());
    }
}
