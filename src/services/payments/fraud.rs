//! Fraud rules: every payment is scored before a provider sees it, from the recent
//! activity of its user, client address and card. Thresholds come from config; the
//! verdict (score and rules fired) is kept on the payment. Scoring is a pure function;
//! the activity counters are read and written in the caller's transaction.

use super::model::{FraudAction, FraudVerdict};
use crate::config::FraudConfig;
use crate::error::Result;
use crate::store::codec;
use crate::store::tables::FRAUD_SUBJECT_TO_ACTIVITY;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// Recent activity of one subject (a user, an address or a card), at most a day of it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// (unix time, amount) of each payment attempt.
    #[serde(default)]
    pub attempts: Vec<(i64, i64)>,
    /// Unix times of declined payments.
    #[serde(default)]
    pub declines: Vec<i64>,
    /// (unix time, card key) of each card used.
    #[serde(default)]
    pub cards: Vec<(i64, String)>,
    /// Largest successful payment ever, and how many succeeded (users only).
    #[serde(default)]
    pub max_success: i64,
    #[serde(default)]
    pub successes: u64,
}

impl Activity {
    fn trim(&mut self, now: i64) {
        self.attempts.retain(|(t, _)| now - t < DAY);
        self.declines.retain(|t| now - t < DAY);
        self.cards.retain(|(t, _)| now - t < DAY);
    }
    fn count_since(&self, now: i64, window: i64) -> u32 {
        self.attempts
            .iter()
            .filter(|(t, _)| now - t < window)
            .count() as u32
    }
    fn amount_since(&self, now: i64, window: i64) -> i64 {
        self.attempts
            .iter()
            .filter(|(t, _)| now - t < window)
            .map(|(_, a)| *a)
            .fold(0i64, i64::saturating_add)
    }
}

/// Everything the rules look at for one payment.
#[derive(Debug, Default, Clone)]
pub struct Input {
    pub now: i64,
    pub amount: i64,
    pub user: Activity,
    pub address: Option<Activity>,
    pub card: Option<Activity>,
    pub card_key: Option<String>,
    /// Age of the paying account in seconds.
    pub account_age_secs: i64,
}

/// Scores a payment: each rule that fires adds its weight (capped at 100).
pub fn score(cfg: &FraudConfig, input: &Input) -> FraudVerdict {
    let mut rules = Vec::new();
    let mut score = 0u32;
    let mut fire = |name: String, weight: u32| {
        score = (score + weight).min(100);
        rules.push(name);
    };
    let now = input.now;
    let subjects = [
        ("user", Some(&input.user)),
        ("address", input.address.as_ref()),
        ("card", input.card.as_ref()),
    ];
    for (kind, act) in subjects {
        let Some(act) = act else { continue };
        if act.count_since(now, HOUR) + 1 > cfg.max_per_hour {
            fire(format!("velocity_hour_{kind}"), 40);
        } else if act.count_since(now, DAY) + 1 > cfg.max_per_day {
            fire(format!("velocity_day_{kind}"), 30);
        }
        if act.amount_since(now, DAY).saturating_add(input.amount) > cfg.max_amount_per_day {
            fire(format!("amount_day_{kind}"), 40);
        }
    }
    let u = &input.user;
    if u.max_success > 0 && input.amount > u.max_success.saturating_mul(cfg.history_multiple) {
        fire("amount_above_history".into(), 30);
    }
    if u.successes == 0
        && input.account_age_secs < (cfg.new_account_hours as i64) * HOUR
        && input.amount > cfg.new_account_amount
    {
        fire("new_account_large_payment".into(), 40);
    }
    let declines = u
        .declines
        .len()
        .max(input.card.as_ref().map_or(0, |c| c.declines.len()));
    if declines as u32 >= cfg.max_declines_per_day {
        fire("repeated_declines".into(), 50);
    }
    if let Some(key) = &input.card_key {
        let mut cards: Vec<&String> = u.cards.iter().map(|(_, c)| c).collect();
        cards.push(key);
        cards.sort();
        cards.dedup();
        if cards.len() as u32 > cfg.max_cards_per_day {
            fire("many_cards".into(), 40);
        }
    }
    let action = if !cfg.enabled {
        FraudAction::Allow
    } else if score >= cfg.block_score {
        FraudAction::Block
    } else if score >= cfg.review_score {
        FraudAction::Review
    } else {
        FraudAction::Allow
    };
    FraudVerdict {
        action,
        score,
        rules,
    }
}

pub fn load(tx: &WriteTransaction, subject: &str, now: i64) -> Result<Activity> {
    let t = tx.open_table(FRAUD_SUBJECT_TO_ACTIVITY)?;
    let mut a: Activity = match t.get(subject)? {
        Some(v) => codec::decode(v.value())?,
        None => Activity::default(),
    };
    a.trim(now);
    Ok(a)
}

pub fn save(tx: &WriteTransaction, subject: &str, a: &Activity) -> Result<()> {
    tx.open_table(FRAUD_SUBJECT_TO_ACTIVITY)?
        .insert(subject, codec::encode(a)?.as_slice())?;
    Ok(())
}

/// The subjects a payment counts against.
pub fn subjects(user: &str, ip: Option<&str>, card_key: Option<&str>) -> Vec<String> {
    let mut s = vec![format!("user:{user}")];
    if let Some(ip) = ip {
        s.push(format!("ip:{ip}"));
    }
    if let Some(c) = card_key {
        s.push(format!("card:{c}"));
    }
    s
}

/// What happened to a payment, for the counters.
pub enum Mark {
    Attempt {
        amount: i64,
        card_key: Option<String>,
    },
    Declined,
    Succeeded {
        amount: i64,
    },
}

/// Updates the counters of every subject of a payment.
pub fn record(tx: &WriteTransaction, subjects: &[String], now: i64, mark: &Mark) -> Result<()> {
    for s in subjects {
        let mut a = load(tx, s, now)?;
        match mark {
            Mark::Attempt { amount, card_key } => {
                a.attempts.push((now, *amount));
                if let Some(c) = card_key {
                    a.cards.push((now, c.clone()));
                }
            }
            Mark::Declined => a.declines.push(now),
            Mark::Succeeded { amount } => {
                if s.starts_with("user:") {
                    a.successes += 1;
                    a.max_success = a.max_success.max(*amount);
                } else {
                    continue;
                }
            }
        }
        save(tx, s, &a)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg() -> FraudConfig {
        FraudConfig::default()
    }

    fn old_user(now: i64) -> Input {
        Input {
            now,
            amount: 1000,
            account_age_secs: 30 * DAY,
            ..Input::default()
        }
    }

    #[test]
    fn a_quiet_payment_is_allowed() {
        let v = score(&cfg(), &old_user(1_000_000));
        assert_eq!(v.action, FraudAction::Allow);
        assert_eq!(v.score, 0);
        assert!(v.rules.is_empty());
    }

    #[test]
    fn rules_add_up_to_review_then_block() {
        let now = 1_000_000;
        let mut i = old_user(now);
        i.user.attempts = (0..20).map(|k| (now - k * 60, 100)).collect();
        let v = score(&cfg(), &i);
        assert_eq!(v.rules, vec!["velocity_hour_user"]);
        assert_eq!(v.action, FraudAction::Allow);
        i.user.max_success = 10;
        i.user.successes = 1;
        let v = score(&cfg(), &i);
        assert_eq!(v.score, 70);
        assert_eq!(v.action, FraudAction::Review);
        i.user.attempts = (0..20).map(|k| (now - k * 60, 60_000)).collect();
        let v = score(&cfg(), &i);
        assert!(v.rules.contains(&"amount_day_user".to_string()), "{v:?}");
        assert_eq!(v.action, FraudAction::Block);
        // Attempts older than a day no longer count.
        i.user.attempts = (0..20).map(|k| (now - DAY - k, 60_000)).collect();
        i.user.trim(now);
        assert_eq!(score(&cfg(), &i).rules, vec!["amount_above_history"]);
    }

    #[test]
    fn declines_and_many_cards_block() {
        let now = 1_000_000;
        let mut i = old_user(now);
        i.user.declines = vec![now - 10; 5];
        i.user.cards = vec![(now, "a".into()), (now, "b".into()), (now, "c".into())];
        i.card_key = Some("d".into());
        let v = score(&cfg(), &i);
        assert_eq!(v.score, 90);
        assert_eq!(v.action, FraudAction::Block);
        assert_eq!(v.rules, vec!["repeated_declines", "many_cards"]);
        let mut off = cfg();
        off.enabled = false;
        assert_eq!(score(&off, &i).action, FraudAction::Allow);
    }

    #[test]
    fn new_accounts_and_history() {
        let now = 1_000_000;
        let mut i = old_user(now);
        i.account_age_secs = 60;
        i.amount = 200_000;
        let v = score(&cfg(), &i);
        assert!(v.rules.contains(&"new_account_large_payment".to_string()));
        let mut j = old_user(now);
        j.user.max_success = 1000;
        j.user.successes = 3;
        j.amount = 30_000;
        assert_eq!(score(&cfg(), &j).rules, vec!["amount_above_history"]);
        j.amount = 20_000;
        assert!(score(&cfg(), &j).rules.is_empty());
    }
}
