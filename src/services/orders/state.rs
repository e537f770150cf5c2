//! The one table of order and sub-order states and every transition allowed between them.
//! Every status change in the service goes through [`check`]; no handler compares status
//! strings. This module never touches storage or money.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A state of an order or of one vendor's sub-order (both use the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    PendingPayment,
    Paid,
    PaymentFailed,
    Cancelled,
    Processing,
    Shipped,
    Delivered,
    ReturnRequested,
    Returned,
    Refunded,
    Completed,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::PendingPayment,
        Status::Paid,
        Status::PaymentFailed,
        Status::Cancelled,
        Status::Processing,
        Status::Shipped,
        Status::Delivered,
        Status::ReturnRequested,
        Status::Returned,
        Status::Refunded,
        Status::Completed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::PendingPayment => "pending_payment",
            Status::Paid => "paid",
            Status::PaymentFailed => "payment_failed",
            Status::Cancelled => "cancelled",
            Status::Processing => "processing",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::ReturnRequested => "return_requested",
            Status::Returned => "returned",
            Status::Refunded => "refunded",
            Status::Completed => "completed",
        }
    }

    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Nothing moves out of these.
    pub fn is_final(&self) -> bool {
        table_from(Level::Order, *self).next().is_none()
            && table_from(Level::SubOrder, *self).next().is_none()
    }
}

/// Whether a row of the table is about the whole order or one vendor's part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Order,
    SubOrder,
}

use Level::{Order as O, SubOrder as S};
use Status::*;

/// Every allowed transition: (level, from, to, what causes it).
pub const TRANSITIONS: &[(Level, Status, Status, &str)] = &[
    (
        O,
        PendingPayment,
        Paid,
        "payment succeeded (or cash on delivery accepted)",
    ),
    (
        O,
        PendingPayment,
        PaymentFailed,
        "payment failed; stock released",
    ),
    (
        O,
        PendingPayment,
        Cancelled,
        "buyer or admin cancelled, or payment timed out; stock released",
    ),
    (
        O,
        Paid,
        Cancelled,
        "cancelled before any parcel shipped; stock released, payment refunded",
    ),
    (O, Paid, Delivered, "every vendor's parcel delivered"),
    (
        O,
        Delivered,
        Completed,
        "return window passed with no return open; vendors' share released",
    ),
    (S, PendingPayment, Paid, "the order was paid"),
    (
        S,
        PendingPayment,
        PaymentFailed,
        "the order's payment failed",
    ),
    (S, PendingPayment, Cancelled, "the order was cancelled"),
    (
        S,
        Paid,
        Processing,
        "the vendor started preparing the parcel",
    ),
    (S, Paid, Cancelled, "the order was cancelled"),
    (S, Processing, Cancelled, "the order was cancelled"),
    (
        S,
        Processing,
        Shipped,
        "the vendor shipped (carrier and tracking); stock leaves on hand",
    ),
    (S, Shipped, Delivered, "the parcel arrived"),
    (
        S,
        Delivered,
        ReturnRequested,
        "the buyer asked to return lines within the window",
    ),
    (
        S,
        Refunded,
        ReturnRequested,
        "the buyer asked to return more lines within the window",
    ),
    (
        S,
        ReturnRequested,
        Delivered,
        "the vendor rejected the return",
    ),
    (
        S,
        ReturnRequested,
        Refunded,
        "the vendor rejected a further return; earlier returns stay refunded",
    ),
    (
        S,
        ReturnRequested,
        Returned,
        "the vendor approved the return and received the goods",
    ),
    (S, Returned, Refunded, "the returned lines were refunded"),
    (
        S,
        Delivered,
        Completed,
        "return window passed; the vendor's share released",
    ),
    (
        S,
        Refunded,
        Completed,
        "return window passed; the rest of the vendor's share released",
    ),
];

fn table_from(level: Level, from: Status) -> impl Iterator<Item = Status> {
    TRANSITIONS
        .iter()
        .filter(move |(l, f, _, _)| *l == level && *f == from)
        .map(|(_, _, t, _)| *t)
}

pub fn allowed(level: Level, from: Status, to: Status) -> bool {
    table_from(level, from).any(|t| t == to)
}

/// `Ok` if the table has the move, else 409 `illegal_transition` naming it.
pub fn check(level: Level, from: Status, to: Status) -> Result<()> {
    if allowed(level, from, to) {
        Ok(())
    } else {
        let what = match level {
            Level::Order => "an order",
            Level::SubOrder => "a vendor's part of an order",
        };
        Err(Error::conflict(
            "illegal_transition",
            format!("{what} cannot go from {} to {}", from.as_str(), to.as_str()),
        ))
    }
}

/// The states a level may reach next from `from`.
pub fn next(level: Level, from: Status) -> Vec<Status> {
    table_from(level, from).collect()
}

/// The text form of the table (README, `souk` help): one line per transition.
pub fn describe() -> String {
    TRANSITIONS
        .iter()
        .map(|(l, f, t, why)| {
            let l = match l {
                Level::Order => "order",
                Level::SubOrder => "sub-order",
            };
            format!("{l:9} {:16} -> {:16} {why}", f.as_str(), t.as_str())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_in_the_table() {
        for (a, b) in [
            (PendingPayment, Paid),
            (Paid, Delivered),
            (Delivered, Completed),
        ] {
            assert!(allowed(Level::Order, a, b), "{a:?} -> {b:?}");
        }
        for (a, b) in [
            (PendingPayment, Paid),
            (Paid, Processing),
            (Processing, Shipped),
            (Shipped, Delivered),
            (Delivered, Completed),
        ] {
            assert!(allowed(Level::SubOrder, a, b), "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn illegal_moves_are_refused_with_409() {
        for (l, a, b) in [
            (Level::Order, Completed, Cancelled),
            (Level::Order, Delivered, Cancelled),
            (Level::Order, PaymentFailed, Paid),
            (Level::Order, Cancelled, Paid),
            (Level::SubOrder, Shipped, Cancelled),
            (Level::SubOrder, Paid, Delivered),
            (Level::SubOrder, Delivered, Shipped),
            (Level::SubOrder, Completed, ReturnRequested),
        ] {
            let e = check(l, a, b).unwrap_err();
            assert_eq!(e.code(), "illegal_transition");
        }
    }

    #[test]
    fn nothing_moves_to_itself_and_final_states_are_final() {
        for (_, f, t, _) in TRANSITIONS {
            assert_ne!(f, t);
        }
        for s in [Completed, Cancelled, PaymentFailed] {
            assert!(s.is_final(), "{s:?}");
        }
        assert!(!Paid.is_final());
        assert_eq!(next(Level::Order, Completed), vec![]);
    }

    #[test]
    fn every_state_is_reachable_from_pending_payment() {
        let mut seen = vec![PendingPayment];
        let mut i = 0;
        while i < seen.len() {
            for l in [Level::Order, Level::SubOrder] {
                for n in next(l, seen[i]) {
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                }
            }
            i += 1;
        }
        for s in Status::ALL {
            assert!(seen.contains(&s), "{s:?} unreachable");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(Status::parse("shipping"), None);
        assert!(describe().lines().count() == TRANSITIONS.len());
    }
}
