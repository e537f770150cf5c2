//! How values are stored: JSON, which is self-describing, so adding a field with
//! `#[serde(default)]` never needs a rewrite and an old binary's records stay readable.
//! Speed is not the concern here: records are small and redb reads are memory-mapped.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encode: {e}")))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize)]
    struct V1 {
        name: String,
    }

    #[derive(Deserialize, Debug)]
    struct V2 {
        name: String,
        #[serde(default)]
        nickname: Option<String>,
        #[serde(default = "ten")]
        limit: u32,
    }

    fn ten() -> u32 {
        10
    }

    #[test]
    fn a_new_field_with_a_default_reads_old_records() {
        let old = encode(&V1 { name: "ada".into() }).unwrap();
        let new: V2 = decode(&old).unwrap();
        assert_eq!(new.name, "ada");
        assert_eq!(new.nickname, None);
        assert_eq!(new.limit, 10);
    }

    #[test]
    fn garbage_is_a_storage_error() {
        let e = decode::<V2>(b"\x00\x01").unwrap_err();
        assert_eq!(e.code(), "storage");
    }
}
