//! The services of the design, one folder each: commands and queries in `mod.rs`, types in
//! `model.rs`, tables in `store.rs`, JSON routes in `api.rs`. Also the list shape they share.

pub mod catalog;
pub mod orders;
pub mod payments;
pub mod search;
pub mod users;
pub mod vendors;

use serde::{Deserialize, Serialize};

/// One page of a list: `{items, next_cursor}`; `next_cursor` is opaque to clients.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?cursor=&limit=` as every list takes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

impl PageQuery {
    /// The page size asked for, refused (not clamped) when out of range.
    pub fn limit(&self) -> crate::Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(crate::Error::invalid(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The cursor decoded as a UUID (the lists here page by time-ordered ids).
    pub fn cursor_uuid(&self) -> crate::Result<Option<uuid::Uuid>> {
        match &self.cursor {
            None => Ok(None),
            Some(c) if c.is_empty() => Ok(None),
            Some(c) => uuid::Uuid::try_parse(c).map(Some).map_err(|_| {
                crate::Error::invalid(
                    "cursor",
                    "invalid_cursor",
                    "is not a cursor this list gave out",
                )
            }),
        }
    }
}
