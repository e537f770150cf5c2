//! The double-entry money ledger. Every movement of money is one journal entry whose
//! postings sum to zero per currency, written with the business change that caused it in
//! the caller's transaction. It keeps each account's balance next to its postings; it
//! never decides *why* money moves (payments, orders and payouts do) and never lets a
//! customer wallet go below zero.
//!
//! Sign convention: a posting adds to what the account holds. A wallet top-up by card is
//! `clearing:card −X, wallet:U +X`; a wallet payment for an order is `wallet:U −X,
//! escrow:O +X`; the order service later moves escrow to `vendor_pending:V` and
//! `platform_commission`.

use crate::auth::kv::open_ro;
use crate::auth::{UserId, VendorId};
use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use crate::store::codec;
use crate::store::tables::{ACCOUNT_ENTRY_TO_AMOUNT, ACCOUNT_TO_BALANCE, JOURNAL_ID_TO_ENTRY};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

crate::id_type!(
    /// One journal entry (a balanced set of postings).
    JournalId
);

/// An account of the ledger. Shown and stored as its key, e.g. `wallet:<user id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// What a customer may spend from their wallet.
    Wallet(UserId),
    /// What the platform owes a vendor but has not released yet (order not delivered).
    VendorPending(VendorId),
    /// What a vendor may be paid out.
    VendorAvailable(VendorId),
    /// The platform's commission revenue.
    PlatformCommission,
    /// Money in transit through a payment provider (`card`, `hosted`, `cod`).
    Clearing(String),
    /// Money paid back to customers that has not been recovered from a vendor yet.
    Refunds,
    /// What was paid for an order and not yet shared out between vendors and platform.
    OrderEscrow(Uuid),
}

impl Account {
    pub fn key(&self) -> String {
        match self {
            Account::Wallet(u) => format!("wallet:{u}"),
            Account::VendorPending(v) => format!("vendor_pending:{v}"),
            Account::VendorAvailable(v) => format!("vendor_available:{v}"),
            Account::PlatformCommission => "platform_commission".into(),
            Account::Clearing(p) => format!("clearing:{p}"),
            Account::Refunds => "refunds".into(),
            Account::OrderEscrow(o) => format!("escrow:{o}"),
        }
    }

    pub fn parse(raw: &str) -> Option<Account> {
        let (kind, rest) = raw.split_once(':').unwrap_or((raw, ""));
        let uuid = || Uuid::try_parse(rest).ok();
        Some(match kind {
            "wallet" => Account::Wallet(UserId(uuid()?)),
            "vendor_pending" => Account::VendorPending(VendorId(uuid()?)),
            "vendor_available" => Account::VendorAvailable(VendorId(uuid()?)),
            "platform_commission" if rest.is_empty() => Account::PlatformCommission,
            "clearing" if valid_provider(rest) => Account::Clearing(rest.to_string()),
            "refunds" if rest.is_empty() => Account::Refunds,
            "escrow" => Account::OrderEscrow(uuid()?),
            _ => return None,
        })
    }
}

fn valid_provider(p: &str) -> bool {
    !p.is_empty() && p.len() <= 32 && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Account::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ledger account {s:?}")))
    }
}

/// A journal entry to post: lines of (account, signed amount), summing to zero per currency.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub lines: Vec<(Account, Money)>,
    /// What caused it, e.g. `payment:<id>` or `order:<id>`; shown in wallet histories.
    pub reference: String,
    pub memo: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    pub amount: Money,
}

/// A journal entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub id: JournalId,
    pub postings: Vec<Posting>,
    pub reference: String,
    pub memo: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn balance_key(account: &Account, currency: Currency) -> String {
    format!("{}/{}", account.key(), currency)
}

fn posting_key(balance_key: &str, id: JournalId) -> Vec<u8> {
    let mut k = Vec::with_capacity(balance_key.len() + 17);
    k.extend_from_slice(balance_key.as_bytes());
    k.push(0);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// Checks that an entry balances: at least two lines, no zero line, and per currency a
/// sum of exactly zero without overflow. This is what makes an unbalanced entry
/// impossible to write.
pub fn validate(entry: &JournalEntry) -> Result<()> {
    if entry.lines.len() < 2 {
        return Err(unbalanced("a journal entry needs at least two postings"));
    }
    let mut sums: BTreeMap<Currency, i64> = BTreeMap::new();
    for (account, m) in &entry.lines {
        if m.amount == 0 {
            return Err(unbalanced(format!("zero posting to {}", account.key())));
        }
        let s = sums.entry(m.currency).or_insert(0);
        *s = s
            .checked_add(m.amount)
            .ok_or_else(|| unbalanced("the postings overflow"))?;
    }
    for (cur, sum) in sums {
        if sum != 0 {
            return Err(unbalanced(format!(
                "postings in {cur} sum to {sum}, not zero"
            )));
        }
    }
    Ok(())
}

fn unbalanced(msg: impl Into<String>) -> Error {
    Error::Internal(format!("unbalanced journal entry: {}", msg.into()))
}

/// Posts a balanced entry in the caller's transaction and returns its id. Refuses (and
/// writes nothing) if it does not balance or would take a wallet below zero
/// (`insufficient_funds`); the caller's transaction should then be abandoned.
pub fn post(tx: &WriteTransaction, entry: JournalEntry) -> Result<JournalId> {
    validate(&entry)?;
    let id = JournalId::new();
    let mut balances = tx.open_table(ACCOUNT_TO_BALANCE)?;
    let mut postings = tx.open_table(ACCOUNT_ENTRY_TO_AMOUNT)?;
    // Compute every new balance before writing any, so a refusal writes nothing.
    let mut updates = Vec::with_capacity(entry.lines.len());
    for (account, m) in &entry.lines {
        let key = balance_key(account, m.currency);
        let already = updates
            .iter()
            .rev()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, b)| *b);
        let old = match already {
            Some(b) => b,
            None => balances.get(key.as_str())?.map(|v| v.value()).unwrap_or(0),
        };
        let new = old
            .checked_add(m.amount)
            .ok_or_else(|| Error::conflict("amount_overflow", "the balance is too large"))?;
        if matches!(account, Account::Wallet(_)) && new < 0 {
            return Err(Error::conflict(
                "insufficient_funds",
                "the wallet balance does not cover this amount",
            ));
        }
        updates.push((key, m.amount, new));
    }
    for (key, amount, new) in &updates {
        balances.insert(key.as_str(), *new)?;
        let pk = posting_key(key, id);
        // Two lines on one account in one entry are kept as their sum.
        let prev = postings.get(pk.as_slice())?.map(|v| v.value()).unwrap_or(0);
        postings.insert(pk.as_slice(), prev + amount)?;
    }
    let stored = StoredEntry {
        id,
        postings: entry
            .lines
            .into_iter()
            .map(|(account, amount)| Posting { account, amount })
            .collect(),
        reference: entry.reference,
        memo: entry.memo,
        at: entry.at,
    };
    tx.open_table(JOURNAL_ID_TO_ENTRY)?
        .insert(id.to_bytes().as_slice(), codec::encode(&stored)?.as_slice())?;
    Ok(id)
}

fn read_balance(table: &impl ReadableTable<&'static str, i64>, key: &str) -> Result<i64> {
    Ok(table.get(key)?.map(|v| v.value()).unwrap_or(0))
}

/// An account's balance in one currency (zero for an account never posted to).
pub fn balance(rtx: &ReadTransaction, account: &Account, currency: Currency) -> Result<Money> {
    let Some(t) = open_ro(rtx, ACCOUNT_TO_BALANCE)? else {
        return Ok(Money::zero(currency));
    };
    Ok(Money::new(
        read_balance(&t, &balance_key(account, currency))?,
        currency,
    ))
}

/// [`balance`] inside a write transaction (sees the transaction's own postings).
pub fn balance_in(tx: &WriteTransaction, account: &Account, currency: Currency) -> Result<Money> {
    let t = tx.open_table(ACCOUNT_TO_BALANCE)?;
    Ok(Money::new(
        read_balance(&t, &balance_key(account, currency))?,
        currency,
    ))
}

/// Every non-zero balance of an account, one per currency.
pub fn balances(rtx: &ReadTransaction, account: &Account) -> Result<Vec<Money>> {
    let Some(t) = open_ro(rtx, ACCOUNT_TO_BALANCE)? else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}/", account.key());
    let mut out = Vec::new();
    for row in t.range(prefix.as_str()..)? {
        let (k, v) = row?;
        let Some(cur) = k.value().strip_prefix(prefix.as_str()) else {
            break;
        };
        if let Some(c) = Currency::parse(cur)
            && v.value() != 0
        {
            out.push(Money::new(v.value(), c));
        }
    }
    Ok(out)
}

pub fn entry(rtx: &ReadTransaction, id: JournalId) -> Result<Option<StoredEntry>> {
    let Some(t) = open_ro(rtx, JOURNAL_ID_TO_ENTRY)? else {
        return Ok(None);
    };
    t.get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

/// [`entry`] inside a write transaction.
pub fn entry_in(tx: &WriteTransaction, id: JournalId) -> Result<Option<StoredEntry>> {
    let t = tx.open_table(JOURNAL_ID_TO_ENTRY)?;
    t.get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

/// One line of an account's history, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    pub journal_id: JournalId,
    pub amount: Money,
    pub reference: String,
    pub memo: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An account's postings in one currency, newest first, starting before `before`.
/// Returns the page and whether more follow.
pub fn history(
    rtx: &ReadTransaction,
    account: &Account,
    currency: Currency,
    before: Option<JournalId>,
    limit: usize,
) -> Result<(Vec<HistoryLine>, bool)> {
    let key = balance_key(account, currency);
    let lo = posting_key(&key, JournalId(Uuid::nil()));
    let hi = match before {
        Some(b) => posting_key(&key, b),
        None => posting_key(&key, JournalId(Uuid::max())),
    };
    let (Some(postings), Some(journal)) = (
        open_ro(rtx, ACCOUNT_ENTRY_TO_AMOUNT)?,
        open_ro(rtx, JOURNAL_ID_TO_ENTRY)?,
    ) else {
        return Ok((Vec::new(), false));
    };
    let mut out = Vec::new();
    let mut more = false;
    for row in postings.range(lo.as_slice()..hi.as_slice())?.rev() {
        let (k, v) = row?;
        if out.len() == limit {
            more = true;
            break;
        }
        let kb = k.value();
        let id_bytes: [u8; 16] = kb[kb.len() - 16..]
            .try_into()
            .map_err(|_| Error::Storage("corrupt posting key".into()))?;
        let id = JournalId::from_bytes(id_bytes);
        let e: StoredEntry = match journal.get(id_bytes.as_slice())? {
            Some(raw) => codec::decode(raw.value())?,
            None => {
                return Err(Error::Storage(format!(
                    "posting without journal entry {id}"
                )));
            }
        };
        out.push(HistoryLine {
            journal_id: id,
            amount: Money::new(v.value(), currency),
            reference: e.reference,
            memo: e.memo,
            at: e.at,
        });
    }
    Ok((out, more))
}

/// `souk check`: every entry balances, and every stored balance equals the sum of the
/// postings of its account (both from the journal and from the per-account index).
pub fn verify(rtx: &ReadTransaction, report: &mut crate::check::Report) -> Result<()> {
    // The three ledger tables are created together by the first posting.
    let Some(journal) = open_ro(rtx, JOURNAL_ID_TO_ENTRY)? else {
        report.pass("ledger: no journal entries yet");
        return Ok(());
    };
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    let mut entries = 0u64;
    let mut bad = Vec::new();
    for row in journal.iter()? {
        let (_, v) = row?;
        let e: StoredEntry = codec::decode(v.value())?;
        entries += 1;
        let as_entry = JournalEntry {
            lines: e
                .postings
                .iter()
                .map(|p| (p.account.clone(), p.amount))
                .collect(),
            reference: String::new(),
            memo: String::new(),
            at: e.at,
        };
        if let Err(err) = validate(&as_entry) {
            bad.push(format!("{}: {err}", e.id));
        }
        for p in &e.postings {
            let s = sums
                .entry(balance_key(&p.account, p.amount.currency))
                .or_insert(0);
            *s = s.saturating_add(p.amount.amount);
        }
    }
    match bad.first() {
        None => report.pass(format!("ledger: all {entries} journal entries balance")),
        Some(first) => report.fail(format!(
            "ledger: {} unbalanced journal entries, first {first}",
            bad.len()
        )),
    }
    let mut indexed: BTreeMap<String, i64> = BTreeMap::new();
    for row in rtx.open_table(ACCOUNT_ENTRY_TO_AMOUNT)?.iter()? {
        let (k, v) = row?;
        let kb = k.value();
        let name = String::from_utf8_lossy(&kb[..kb.len().saturating_sub(17)]).to_string();
        *indexed.entry(name).or_insert(0) += v.value();
    }
    let balances = rtx.open_table(ACCOUNT_TO_BALANCE)?;
    let mut stored: BTreeMap<String, i64> = BTreeMap::new();
    for row in balances.iter()? {
        let (k, v) = row?;
        stored.insert(k.value().to_string(), v.value());
    }
    let mut mismatches = Vec::new();
    let names: std::collections::BTreeSet<&String> = sums
        .keys()
        .chain(stored.keys())
        .chain(indexed.keys())
        .collect();
    for name in names {
        let j = sums.get(name).copied().unwrap_or(0);
        let s = stored.get(name).copied().unwrap_or(0);
        let i = indexed.get(name).copied().unwrap_or(0);
        if j != s || i != s {
            mismatches.push(format!(
                "{name} stores {s}, journal says {j}, postings say {i}"
            ));
        }
    }
    match mismatches.first() {
        None => report.pass(format!(
            "ledger: {} account balances equal the sum of their postings",
            stored.len()
        )),
        Some(first) => report.fail(format!(
            "ledger: {} account balances disagree with their postings, first {first}",
            mismatches.len()
        )),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn eur(a: i64) -> Money {
        Money::new(a, Currency::EUR)
    }

    fn entry(lines: Vec<(Account, Money)>) -> JournalEntry {
        JournalEntry {
            lines,
            reference: "test".into(),
            memo: String::new(),
            at: OffsetDateTime::now_utc(),
        }
    }

    fn db() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("l.redb")).unwrap();
        (dir, db)
    }

    #[test]
    fn unbalanced_entries_are_refused() {
        let u = Account::Wallet(UserId::new());
        let c = Account::Clearing("card".into());
        assert!(validate(&entry(vec![(c.clone(), eur(-100)), (u.clone(), eur(100))])).is_ok());
        assert!(validate(&entry(vec![(c.clone(), eur(-100)), (u.clone(), eur(99))])).is_err());
        assert!(validate(&entry(vec![(u.clone(), eur(0)), (c.clone(), eur(0))])).is_err());
        assert!(validate(&entry(vec![(u.clone(), eur(5))])).is_err());
        let usd = Money::new(100, Currency::parse("USD").unwrap());
        // Zero in total but across two currencies is not balanced.
        assert!(validate(&entry(vec![(c.clone(), eur(-100)), (u.clone(), usd)])).is_err());
        assert!(
            validate(&entry(vec![
                (c.clone(), eur(i64::MAX)),
                (u.clone(), eur(i64::MAX)),
                (Account::Refunds, eur(2)),
            ]))
            .is_err()
        );
    }

    #[test]
    fn posting_moves_balances_and_wallets_never_go_negative() {
        let (_d, db) = db();
        let user = UserId::new();
        let w = Account::Wallet(user);
        let c = Account::Clearing("card".into());
        let tx = db.begin_write().unwrap();
        post(
            &tx,
            entry(vec![(c.clone(), eur(-1000)), (w.clone(), eur(1000))]),
        )
        .unwrap();
        let e = post(
            &tx,
            entry(vec![(w.clone(), eur(-1001)), (Account::Refunds, eur(1001))]),
        )
        .unwrap_err();
        assert_eq!(e.code(), "insufficient_funds");
        post(
            &tx,
            entry(vec![(w.clone(), eur(-400)), (Account::Refunds, eur(400))]),
        )
        .unwrap();
        tx.commit().unwrap();
        let rtx = db.begin_read().unwrap();
        assert_eq!(balance(&rtx, &w, Currency::EUR).unwrap(), eur(600));
        assert_eq!(balance(&rtx, &c, Currency::EUR).unwrap(), eur(-1000));
        let (lines, more) = history(&rtx, &w, Currency::EUR, None, 10).unwrap();
        assert!(!more);
        assert_eq!(
            lines.iter().map(|l| l.amount.amount).collect::<Vec<_>>(),
            vec![-400, 1000]
        );
        let (page, more) = history(&rtx, &w, Currency::EUR, None, 1).unwrap();
        assert!(more);
        let (rest, _) = history(&rtx, &w, Currency::EUR, Some(page[0].journal_id), 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].amount, eur(1000));
        let mut report = crate::check::Report::default();
        verify(&rtx, &mut report).unwrap();
        assert!(report.ok(), "{report}");
    }

    #[test]
    fn account_keys_round_trip() {
        for a in [
            Account::Wallet(UserId::new()),
            Account::VendorPending(VendorId::new()),
            Account::VendorAvailable(VendorId::new()),
            Account::PlatformCommission,
            Account::Clearing("hosted".into()),
            Account::Refunds,
            Account::OrderEscrow(Uuid::now_v7()),
        ] {
            assert_eq!(Account::parse(&a.key()), Some(a.clone()));
        }
        assert_eq!(Account::parse("wallet:nope"), None);
        assert_eq!(Account::parse("clearing:"), None);
    }
}
