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

/// How a vendor charges shipping: a flat rate per order part, free from a subtotal on
/// (`free_from` 0 = never free). From the vendor's settings, else the config defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShippingRule {
    pub flat: i64,
    pub free_from: i64,
}

impl ShippingRule {
    /// The config defaults (`orders.shipping_flat`, `orders.free_shipping_threshold`).
    pub fn defaults(cfg: &OrdersConfig) -> ShippingRule {
        ShippingRule {
            flat: cfg.shipping_flat,
            free_from: cfg.free_shipping_threshold,
        }
    }

    /// A vendor's own settings where it has them, else the config defaults.
    pub fn of_vendor(
        cfg: &OrdersConfig,
        settings: &crate::services::vendors::model::ShippingSettings,
    ) -> ShippingRule {
        ShippingRule {
            flat: settings.flat_rate.unwrap_or(cfg.shipping_flat),
            free_from: settings
                .free_shipping_threshold
                .unwrap_or(cfg.free_shipping_threshold),
        }
    }
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
    rule: ShippingRule,
) -> Result<PartTotals> {
    let mut subtotal = Money::zero(currency);
    for (price, qty) in lines {
        subtotal = subtotal.checked_add(price.checked_mul(qty)?)?;
    }
    let free = rule.free_from > 0 && subtotal.amount >= rule.free_from;
    let shipping = Money::new(if free { 0 } else { rule.flat }, currency);
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

    fn pt(
        c: &OrdersConfig,
        lines: impl IntoIterator<Item = (Money, i64)>,
        tax_bp: u32,
    ) -> Result<PartTotals> {
        part_totals(c, Currency::EUR, lines, tax_bp, ShippingRule::defaults(c))
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
        let t = pt(&c, [(eur(1000), 2)], 2000).unwrap();
        assert_eq!(t.subtotal, eur(2000));
        assert_eq!(t.shipping, eur(490));
        assert_eq!(t.total, eur(2490));
        let t = pt(&c, [(eur(2500), 2)], 2000).unwrap();
        assert_eq!(t.shipping, eur(0));
        let never = OrdersConfig {
            free_shipping_threshold: 0,
            ..cfg(true)
        };
        let t = pt(&never, [(eur(99_999), 1)], 0).unwrap();
        assert_eq!(t.shipping, eur(490));
    }

    #[test]
    fn a_vendors_own_rule_replaces_the_defaults() {
        use crate::services::vendors::model::ShippingSettings;
        let c = cfg(true);
        let own = ShippingRule::of_vendor(
            &c,
            &ShippingSettings {
                flat_rate: Some(250),
                free_shipping_threshold: Some(0),
            },
        );
        assert_eq!(
            own,
            ShippingRule {
                flat: 250,
                free_from: 0
            }
        );
        let t = part_totals(&c, Currency::EUR, [(eur(9000), 1)], 2000, own).unwrap();
        assert_eq!(t.shipping, eur(250));
        let half = ShippingRule::of_vendor(
            &c,
            &ShippingSettings {
                flat_rate: None,
                free_shipping_threshold: Some(1000),
            },
        );
        assert_eq!(
            half,
            ShippingRule {
                flat: 490,
                free_from: 1000
            }
        );
    }

    #[test]
    fn inclusive_tax_is_the_part_of_the_price_it_is() {
        // 24.90 gross at 20 %: 24.90 / 1.2 = 20.75 net, 4.15 tax.
        let t = pt(&cfg(true), [(eur(1000), 2)], 2000).unwrap();
        assert_eq!(t.tax, eur(415));
        assert_eq!(t.total, eur(2490));
        // 0.99 + 4.90 = 5.89 at 19 %: 5.89 × 19/119 = 0.9404… → 0.94.
        let t = pt(&cfg(true), [(eur(99), 1)], 1900).unwrap();
        assert_eq!(t.tax, eur(94));
    }

    #[test]
    fn exclusive_tax_is_added_and_rounded_half_up() {
        // 10.05 + 4.90 = 14.95 at 10 %: 1.495 → 1.50.
        let t = pt(&cfg(false), [(eur(1005), 1)], 1000).unwrap();
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
        assert!(pt(&cfg(true), [(eur(i64::MAX / 2), 3)], 0).is_err());
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
