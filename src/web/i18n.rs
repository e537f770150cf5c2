//! Every word the pages show goes through [`I18n::t`]: a key looked up in the English
//! table compiled into the binary (`i18n/en.toml`, plus the account pages' own table).
//! `{name}` placeholders are filled from arguments. A missing key is an error, so a typo
//! fails a test instead of showing a key to a shopper.

use crate::error::{Error, Result};
use std::collections::HashMap;

const EN: &str = include_str!("i18n/en.toml");

pub struct I18n {
    strings: HashMap<String, String>,
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut HashMap<String, String>) -> Result<()> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        toml::Value::String(s) => {
            if out.insert(prefix.to_string(), s.clone()).is_some() {
                return Err(Error::internal(format!(
                    "translation key `{prefix}` defined twice"
                )));
            }
            Ok(())
        }
        _ => Err(Error::internal(format!(
            "translation `{prefix}` must be a string"
        ))),
    }
}

impl I18n {
    /// The English tables: ours and the account pages'.
    pub fn english() -> Result<I18n> {
        let mut strings = HashMap::new();
        for (name, text) in [
            ("en.toml", EN),
            ("account (en)", super::storefront::account::STRINGS),
        ] {
            let v: toml::Value = toml::from_str(text)
                .map_err(|e| Error::internal(format!("translation table {name}: {e}")))?;
            flatten("", &v, &mut strings)?;
        }
        Ok(I18n { strings })
    }

    /// The text of `key`, or the key itself when it is missing (Rust callers; templates
    /// use [`I18n::lookup`] and fail loudly).
    pub fn t(&self, key: &str) -> String {
        self.strings
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// `key` with `{name}` placeholders replaced from `args`.
    pub fn t_with(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(&self.t(key), args)
    }

    pub fn lookup(&self, key: &str) -> Option<&str> {
        self.strings.get(key).map(String::as_str)
    }

    /// Every key with its text.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.strings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

pub fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (k, v) in args {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Digits after the decimal point for a currency (ISO 4217 minor units).
fn minor_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "HUF" | "XOF" | "XAF" | "UGX" | "PYG" => 0,
        "KWD" | "BHD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        "JPY" => "¥",
        "INR" => "₹",
        _ => return None,
    })
}

/// A machine-readable amount (`1234.50`, schema.org and form values): the currency's
/// decimals, no grouping.
pub fn decimal(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10u64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }
}

/// A price for people: `€1,234.50`, `¥1,200`, `12.345 KWD`. Integer arithmetic only.
pub fn money(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10i64.pow(digits);
    let neg = minor < 0;
    let abs = minor.unsigned_abs();
    let whole = abs / scale as u64;
    let frac = abs % scale as u64;
    let w = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in w.chars().enumerate() {
        if i > 0 && (w.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let number = if digits == 0 {
        grouped
    } else {
        format!("{grouped}.{frac:0width$}", width = digits as usize)
    };
    let sign = if neg { "-" } else { "" };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{number} {currency}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn english_table_loads_and_fills() {
        let i = I18n::english().unwrap();
        assert_eq!(i.t("nav.cart"), "Cart");
        assert_eq!(i.t("no.such.key"), "no.such.key");
        assert!(i.lookup("no.such.key").is_none());
        assert_eq!(fill("Hi {name}", &[("name", "Ada")]), "Hi Ada");
    }

    #[test]
    fn money_is_formatted_per_currency() {
        assert_eq!(money(123450, "EUR"), "€1,234.50");
        assert_eq!(money(5, "EUR"), "€0.05");
        assert_eq!(money(-199, "USD"), "-$1.99");
        assert_eq!(money(1200, "JPY"), "¥1,200");
        assert_eq!(money(12345, "KWD"), "12.345 KWD");
        assert_eq!(money(100000000, "CHF"), "1,000,000.00 CHF");
        assert_eq!(decimal(123450, "EUR"), "1234.50");
        assert_eq!(decimal(-5, "USD"), "-0.05");
        assert_eq!(decimal(1200, "JPY"), "1200");
    }
}
