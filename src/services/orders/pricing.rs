//! The arithmetic of a vendor's part of a cart or order: subtotal, flat shipping with a
//! free-shipping threshold, tax (inclusive or exclusive, by country), commission. Pure
//! functions over `Money`; rounding is half-up in integer minor units, never floats.

use crate::config::OrdersConfig;
use crate::error::{Error, Result};
use crate::money::{Currency, Money};

/// What one vendor's part costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartTotals {
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

/// `a × num / den`, rounded half-up (amounts here are never negative).
pub fn mul_div_round(a: i64, num: i64, den: i64) -> Result<i64> {
    if den <= 0 || a < 0 || num < 0 {
        return Err(Error::internal("mul_div_round on a negative amount"));
    }
    let (a, num, den) = (a as i128, num as i128, den as i128);
    let q = (a * num * 2 + den) / (den * 2);
    i64::try_from(q).map_err(|_| Error::conflict("amount_overflow", "the amount is too large"))
}

pub fn tax_rate_bp(cfg: &OrdersConfig, country: Option<&str>) -> u32 {
    country
        .and_then(|c| cfg.tax_rates.get(c).copied())
        .unwrap_or(cfg.default_tax_rate_bp)
}

/// Totals for one vendor's lines (each a unit price and a quantity).
pub fn part_totals(
    cfg: &OrdersConfig,
    currency: Currency,
    lines: impl IntoIterator<Item = (Money, i64)>,
    tax_bp: u32,
) -> Result<PartTotals> {
    let mut subtotal = Money::zero(currency);
    for (price, qty) in lines {
        subtotal = subtotal.checked_add(price.checked_mul(qty)?)?;
    }
    let free = cfg.free_shipping_threshold > 0 && subtotal.amount >= cfg.free_shipping_threshold;
    let shipping = Money::new(if free { 0 } else { cfg.shipping_flat }, currency);
    let gross = subtotal.checked_add(shipping)?;
    let bp = i64::from(tax_bp);
    let (tax, total) = if cfg.prices_include_tax {
        // The tax contained in a gross amount: gross × r / (1 + r).
        (mul_div_round(gross.amount, bp, 10_000 + bp)?, gross.amount)
    } else {
        let t = mul_div_round(gross.amount, bp, 10_000)?;
        (t, gross.amount.checked_add(t).ok_or_else(overflow)?)
    };
    Ok(PartTotals {
        subtotal,
        shipping,
        tax: Money::new(tax, currency),
        total: Money::new(total, currency),
    })
}

/// The platform's commission on a vendor's goods (not on shipping or tax).
pub fn commission(subtotal: Money, rate_bp: u32) -> Result<Money> {
    Ok(Money::new(
        mul_div_round(subtotal.amount, i64::from(rate_bp), 10_000)?,
        subtotal.currency,
    ))
}

/// What returning `part` of a part's goods refunds: the goods at their price plus, when
/// tax is added on top, the tax on them.
pub fn refund_for(cfg: &OrdersConfig, goods: Money, tax_bp: u32) -> Result<Money> {
    if cfg.prices_include_tax {
        return Ok(goods);
    }
    let t = mul_div_round(goods.amount, i64::from(tax_bp), 10_000)?;
    goods.checked_add(Money::new(t, goods.currency))
}

fn overflow() -> Error {
    Error::conflict("amount_overflow", "the amount is too large")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::EUR)
    }

    fn cfg(inclusive: bool) -> OrdersConfig {
        OrdersConfig {
            prices_include_tax: inclusive,
            shipping_flat: 490,
            free_shipping_threshold: 5000,
            ..OrdersConfig::default()
        }
    }

    #[test]
    fn shipping_is_flat_until_the_threshold() {
        let c = cfg(true);
        let t = part_totals(&c, Currency::EUR, [(eur(1000), 2)], 2000).unwrap();
        assert_eq!(t.subtotal, eur(2000));
        assert_eq!(t.shipping, eur(490));
        assert_eq!(t.total, eur(2490));
        let t = part_totals(&c, Currency::EUR, [(eur(2500), 2)], 2000).unwrap();
        assert_eq!(t.shipping, eur(0));
        let never = OrdersConfig {
            free_shipping_threshold: 0,
            ..cfg(true)
        };
        let t = part_totals(&never, Currency::EUR, [(eur(99_999), 1)], 0).unwrap();
        assert_eq!(t.shipping, eur(490));
    }

    #[test]
    fn inclusive_tax_is_the_part_of_the_price_it_is() {
        // 24.90 gross at 20 %: 24.90 / 1.2 = 20.75 net, 4.15 tax.
        let t = part_totals(&cfg(true), Currency::EUR, [(eur(1000), 2)], 2000).unwrap();
        assert_eq!(t.tax, eur(415));
        assert_eq!(t.total, eur(2490));
        // 0.99 + 4.90 = 5.89 at 19 %: 5.89 × 19/119 = 0.9404… → 0.94.
        let t = part_totals(&cfg(true), Currency::EUR, [(eur(99), 1)], 1900).unwrap();
        assert_eq!(t.tax, eur(94));
    }

    #[test]
    fn exclusive_tax_is_added_and_rounded_half_up() {
        // 10.05 + 4.90 = 14.95 at 10 %: 1.495 → 1.50.
        let t = part_totals(&cfg(false), Currency::EUR, [(eur(1005), 1)], 1000).unwrap();
        assert_eq!(t.tax, eur(150));
        assert_eq!(t.total, eur(1645));
        assert_eq!(mul_div_round(1, 1, 2).unwrap(), 1);
        assert_eq!(mul_div_round(1, 1, 3).unwrap(), 0);
        assert_eq!(mul_div_round(5, 1, 10).unwrap(), 1);
    }

    #[test]
    fn commission_and_refunds() {
        assert_eq!(commission(eur(2005), 1000).unwrap(), eur(201));
        assert_eq!(commission(eur(0), 1000).unwrap(), eur(0));
        assert_eq!(refund_for(&cfg(true), eur(1000), 2000).unwrap(), eur(1000));
        assert_eq!(refund_for(&cfg(false), eur(1000), 2000).unwrap(), eur(1200));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert!(part_totals(&cfg(true), Currency::EUR, [(eur(i64::MAX / 2), 3)], 0).is_err());
    }

    #[test]
    fn country_rates_fall_back_to_the_default() {
        let mut c = cfg(true);
        c.tax_rates.insert("DE".into(), 1900);
        assert_eq!(tax_rate_bp(&c, Some("DE")), 1900);
        assert_eq!(tax_rate_bp(&c, Some("FR")), 2000);
        assert_eq!(tax_rate_bp(&c, None), 2000);
    }
}
