//! Money as integer minor units with an ISO 4217 currency code, `{"amount": 1999,
//! "currency": "EUR"}` in JSON. Arithmetic is checked: an overflow or a mix of currencies
//! is an `Err`, never a wrapped or silently summed number. Never holds a float.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Three upper-case ASCII letters (`EUR`, `USD`); validated on parse.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn parse(raw: &str) -> Option<Currency> {
        let b = raw.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Some(Currency([b[0], b[1], b[2]]))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        // Only upper-case ASCII gets in, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&s).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&s),
                &"a three-letter upper-case currency code such as EUR",
            )
        })
    }
}

/// An amount in minor units (cents) of one currency. May be negative (refunds, balances);
/// prices are checked to be non-negative where they are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Money {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    fn same_currency(&self, other: &Money) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::conflict(
                "currency_mismatch",
                format!("cannot combine {} with {}", self.currency, other.currency),
            ))
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money> {
        self.same_currency(&other)?;
        self.amount
            .checked_add(other.amount)
            .map(|a| Money::new(a, self.currency))
            .ok_or_else(overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money> {
        self.same_currency(&other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|a| Money::new(a, self.currency))
            .ok_or_else(overflow)
    }

    /// A unit price times a quantity.
    pub fn checked_mul(self, quantity: i64) -> Result<Money> {
        self.amount
            .checked_mul(quantity)
            .map(|a| Money::new(a, self.currency))
            .ok_or_else(overflow)
    }

    /// Sums amounts of one currency; an empty list is zero of `currency`.
    pub fn sum(currency: Currency, items: impl IntoIterator<Item = Money>) -> Result<Money> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Compares two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Money) -> Result<std::cmp::Ordering> {
        self.same_currency(other)?;
        Ok(self.amount.cmp(&other.amount))
    }
}

fn overflow() -> Error {
    Error::conflict("amount_overflow", "the amount is too large")
}

impl fmt::Display for Money {
    /// `19.99 EUR`, for logs and plain-text mail; pages format by locale.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::EUR)
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(eur(1999).checked_add(eur(1)).unwrap(), eur(2000));
        assert_eq!(eur(5).checked_sub(eur(7)).unwrap(), eur(-2));
        assert_eq!(eur(250).checked_mul(3).unwrap(), eur(750));
        assert_eq!(
            eur(i64::MAX).checked_add(eur(1)).unwrap_err().code(),
            "amount_overflow"
        );
        assert_eq!(
            eur(i64::MAX / 2 + 1).checked_mul(2).unwrap_err().code(),
            "amount_overflow"
        );
        assert_eq!(
            Money::sum(Currency::EUR, [eur(1), eur(2), eur(3)]).unwrap(),
            eur(6)
        );
        assert_eq!(Money::sum(Currency::EUR, []).unwrap(), eur(0));
    }

    #[test]
    fn currencies_never_mix() {
        let usd = Money::new(100, Currency::parse("USD").unwrap());
        assert_eq!(
            eur(1).checked_add(usd).unwrap_err().code(),
            "currency_mismatch"
        );
        assert_eq!(
            eur(1).checked_sub(usd).unwrap_err().code(),
            "currency_mismatch"
        );
        assert!(eur(1).checked_cmp(&usd).is_err());
        assert!(Money::sum(Currency::EUR, [eur(1), usd]).is_err());
    }

    #[test]
    fn json_shape_and_currency_validation() {
        let m: Money = serde_json::from_str(r#"{"amount": 1999, "currency": "EUR"}"#).unwrap();
        assert_eq!(m, eur(1999));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":1999,"currency":"EUR"}"#
        );
        for bad in [
            r#"{"amount": 19.99, "currency": "EUR"}"#,
            r#"{"amount": 1999, "currency": "eur"}"#,
            r#"{"amount": 1999, "currency": "EURO"}"#,
            r#"{"amount": "1999", "currency": "EUR"}"#,
            r#"{"amount": 1999}"#,
            r#"{"amount": 1, "currency": "EUR", "cents": 2}"#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(eur(1999).to_string(), "19.99 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
    }
}
