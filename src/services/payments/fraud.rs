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
/// Attempts and declines are counted per minute, so that a subject's record stays small
/// (at most a day of minutes) however many payments it makes: a busy client address
/// once carried every attempt of the day, decoded and rewritten on each payment.
const BUCKET: i64 = 60;

fn minute(t: i64) -> i64 {
    t.div_euclid(BUCKET) * BUCKET
}

/// Whether the minute starting at `start` may hold a time within `window` seconds before
/// `now`. Rounding goes the strict way: a minute counts if its last second does.
fn counts(start: i64, now: i64, window: i64) -> bool {
    now - (start + BUCKET - 1) < window
}

/// Recent activity of one subject (a user, an address or a card), at most a day of it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// Payment attempts per minute: (minute's unix time, count, amount).
    #[serde(default)]
    pub attempt_minutes: Vec<(i64, u32, i64)>,
    /// Declined payments per minute: (minute's unix time, count).
    #[serde(default)]
    pub decline_minutes: Vec<(i64, u32)>,
    /// (last use, card key) of each distinct card.
    #[serde(default)]
    pub cards: Vec<(i64, String)>,
    /// Largest successful payment ever, and how many succeeded (users only).
    #[serde(default)]
    pub max_success: i64,
    #[serde(default)]
    pub successes: u64,
    /// Records written before the per-minute counts listed each attempt and decline:
    /// read, folded into the minutes by `trim`, never written again.
    #[serde(default, skip_serializing)]
    attempts: Vec<(i64, i64)>,
    #[serde(default, skip_serializing)]
    declines: Vec<i64>,
}

impl Activity {
    /// Counts a payment attempt at `t`.
    pub fn attempt(&mut self, t: i64, amount: i64) {
        let m = minute(t);
        match self.attempt_minutes.iter_mut().rev().find(|b| b.0 == m) {
            Some(b) => {
                b.1 = b.1.saturating_add(1);
                b.2 = b.2.saturating_add(amount);
            }
            None => self.attempt_minutes.push((m, 1, amount)),
        }
    }

    /// Counts a declined payment at `t`.
    pub fn decline(&mut self, t: i64) {
        let m = minute(t);
        match self.decline_minutes.iter_mut().rev().find(|b| b.0 == m) {
            Some(b) => b.1 = b.1.saturating_add(1),
            None => self.decline_minutes.push((m, 1)),
        }
    }

    /// Notes a card used at `t` (each card once, with its latest use).
    pub fn use_card(&mut self, t: i64, key: &str) {
        match self.cards.iter_mut().find(|c| c.1 == key) {
            Some(c) => c.0 = c.0.max(t),
            None => self.cards.push((t, key.to_string())),
        }
    }

    fn trim(&mut self, now: i64) {
        for (t, amount) in std::mem::take(&mut self.attempts) {
            if now - t < DAY {
                self.attempt(t, amount);
            }
        }
        for t in std::mem::take(&mut self.declines) {
            if now - t < DAY {
                self.decline(t);
            }
        }
        self.attempt_minutes.retain(|b| counts(b.0, now, DAY));
        self.decline_minutes.retain(|b| counts(b.0, now, DAY));
        let mut cards = std::collections::BTreeMap::new();
        for (t, key) in std::mem::take(&mut self.cards) {
            if now - t < DAY {
                let last = cards.entry(key).or_insert(t);
                *last = (*last).max(t);
            }
        }
        self.cards = cards.into_iter().map(|(k, t)| (t, k)).collect();
    }
    fn count_since(&self, now: i64, window: i64) -> u32 {
        self.attempt_minutes
            .iter()
            .filter(|b| counts(b.0, now, window))
            .fold(0u32, |n, b| n.saturating_add(b.1))
    }
    fn amount_since(&self, now: i64, window: i64) -> i64 {
        self.attempt_minutes
            .iter()
            .filter(|b| counts(b.0, now, window))
            .map(|b| b.2)
            .fold(0i64, i64::saturating_add)
    }
    fn declines_since(&self, now: i64, window: i64) -> u32 {
        self.decline_minutes
            .iter()
            .filter(|b| counts(b.0, now, window))
            .fold(0u32, |n, b| n.saturating_add(b.1))
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
    let declines = u.declines_since(now, DAY).max(
        input
            .card
            .as_ref()
            .map_or(0, |c| c.declines_since(now, DAY)),
    );
    if declines >= cfg.max_declines_per_day {
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
                a.attempt(now, *amount);
                if let Some(c) = card_key {
                    a.use_card(now, c);
                }
            }
            Mark::Declined => a.decline(now),
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

    fn attempts(times: impl Iterator<Item = (i64, i64)>) -> Activity {
        let mut a = Activity::default();
        for (t, amount) in times {
            a.attempt(t, amount);
        }
        a
    }

    #[test]
    fn a_busy_subject_stays_small_and_counts_every_attempt() {
        let now = 10_000_020;
        // Ten thousand attempts in the last minute and a half.
        let a = attempts((0..10_000).map(|k| (now - k % 90, 7)));
        assert!(a.attempt_minutes.len() <= 3, "{:?}", a.attempt_minutes);
        assert_eq!(a.count_since(now, HOUR), 10_000);
        assert_eq!(a.amount_since(now, DAY), 70_000);
        let mut cfg = cfg();
        cfg.max_per_hour = 10_000;
        let mut i = old_user(now);
        i.user = a.clone();
        assert!(
            score(&cfg, &i)
                .rules
                .contains(&"velocity_hour_user".to_string())
        );
        cfg.max_per_hour = 10_001;
        assert!(
            !score(&cfg, &i)
                .rules
                .contains(&"velocity_hour_user".to_string())
        );
        // A minute counts while any second of it is inside the window, never less.
        let mut b = attempts([(now - HOUR + 1, 1)].into_iter());
        assert_eq!(b.count_since(now, HOUR), 1);
        b.trim(now + DAY + BUCKET);
        assert_eq!(b.count_since(now + DAY + BUCKET, DAY), 0);
    }

    #[test]
    fn records_written_with_one_entry_per_attempt_still_count() {
        let now = 1_000_000;
        let old = serde_json::json!({
            "attempts": [[now - 30, 100], [now - 20, 200], [now - DAY - 5, 999]],
            "declines": [now - 10, now - 5],
            "cards": [[now - 40, "k"], [now - 30, "k"]],
            "max_success": 200,
            "successes": 1,
        });
        let mut a: Activity = codec::decode(&serde_json::to_vec(&old).unwrap()).unwrap();
        a.trim(now);
        assert_eq!(a.count_since(now, DAY), 2);
        assert_eq!(a.amount_since(now, DAY), 300);
        assert_eq!(a.declines_since(now, DAY), 2);
        assert_eq!(a.cards, vec![(now - 30, "k".to_string())]);
        let again: serde_json::Value = serde_json::from_slice(&codec::encode(&a).unwrap()).unwrap();
        assert!(again.get("attempts").is_none() && again.get("declines").is_none());
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
        i.user = attempts((0..20).map(|k| (now - k * 60, 100)));
        let v = score(&cfg(), &i);
        assert_eq!(v.rules, vec!["velocity_hour_user"]);
        assert_eq!(v.action, FraudAction::Allow);
        i.user.max_success = 10;
        i.user.successes = 1;
        let v = score(&cfg(), &i);
        assert_eq!(v.score, 70);
        assert_eq!(v.action, FraudAction::Review);
        i.user.attempt_minutes.clear();
        for k in 0..20 {
            i.user.attempt(now - k * 60, 60_000);
        }
        let v = score(&cfg(), &i);
        assert!(v.rules.contains(&"amount_day_user".to_string()), "{v:?}");
        assert_eq!(v.action, FraudAction::Block);
        // Attempts older than a day no longer count.
        i.user.attempt_minutes.clear();
        for k in 0..20 {
            i.user.attempt(now - DAY - 60 - k, 60_000);
        }
        i.user.trim(now);
        assert!(i.user.attempt_minutes.is_empty());
        assert_eq!(score(&cfg(), &i).rules, vec!["amount_above_history"]);
    }

    #[test]
    fn declines_and_many_cards_block() {
        let now = 1_000_000;
        let mut i = old_user(now);
        for _ in 0..5 {
            i.user.decline(now - 10);
        }
        for c in ["a", "b", "c", "a"] {
            i.user.use_card(now, c);
        }
        assert_eq!(i.user.cards.len(), 3);
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
