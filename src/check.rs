//! `souk check`: opens every store read-only and verifies what can be verified, so an
//! operator can trust a data dir after a crash or a restore. Each store adds its findings;
//! nothing here writes.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{migrations, tables};
use redb::{ReadableDatabase, ReadableTableMetadata};
use std::fmt;

/// One verified fact, or one problem found.
pub struct Finding {
    pub ok: bool,
    pub what: String,
}

#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn pass(&mut self, what: impl Into<String>) {
        self.findings.push(Finding {
            ok: true,
            what: what.into(),
        });
    }
    pub fn fail(&mut self, what: impl Into<String>) {
        self.findings.push(Finding {
            ok: false,
            what: what.into(),
        });
    }
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let mark = if finding.ok { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} {}", finding.what)?;
        }
        let failed = self.findings.iter().filter(|f| !f.ok).count();
        if failed == 0 {
            writeln!(f, "all {} checks passed", self.findings.len())
        } else {
            writeln!(f, "{failed} of {} checks failed", self.findings.len())
        }
    }
}

/// Runs every check against the data dir of `config`.
pub fn run(config: &Config) -> Result<Report> {
    let mut report = Report::default();
    let path = config.data_dir.join("souk.redb");
    if !path.is_file() {
        return Err(Error::Storage(format!(
            "{} does not exist: is --data right? (`souk init` creates a data dir)",
            path.display()
        )));
    }
    let db = redb::ReadOnlyDatabase::open(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Storage(format!(
            "{} is open in a running souk; stop it to check the files",
            path.display()
        )),
        e => Error::Storage(format!("{}: {e}", path.display())),
    })?;
    let rtx = db.begin_read()?;
    match crate::store::meta_get::<u32>(&rtx, migrations::SCHEMA_KEY)? {
        Some(v) if v == migrations::SCHEMA_VERSION => {
            report.pass(format!("state: schema version {v}"))
        }
        Some(v) => report.fail(format!(
            "state: schema version {v}, this souk writes {} (serve migrates older ones)",
            migrations::SCHEMA_VERSION
        )),
        None => report.fail("state: no schema version stamped"),
    }
    let pending = rtx.open_table(tables::OUTBOX_SEQ_TO_EVENT)?.len()?;
    if pending == 0 {
        report.pass("state: outbox drained");
    } else {
        // Not an error: the relay moves them on the next start.
        report.pass(format!(
            "state: {pending} event(s) in the outbox, moved to the log on next start"
        ));
    }
    check_log(config, &rtx, &mut report)?;
    crate::services::payments::check(config, &rtx, &mut report)?;
    Ok(report)
}

/// The log's partitions hold dense offsets, every record decodes, and the log has not
/// relayed past what the state committed.
fn check_log(config: &Config, rtx: &redb::ReadTransaction, report: &mut Report) -> Result<()> {
    let dir = config.data_dir.join("log");
    if !dir.is_dir() {
        report.fail(format!("log: {} is missing", dir.display()));
        return Ok(());
    }
    let log = crate::log::EventLog::open(&dir, &config.log, crate::clock::Clock::default())?;
    let problems = log.verify()?;
    if problems.is_empty() {
        let topics = log.topics();
        report.pass(format!(
            "log: {} topic(s), offsets dense in every partition",
            topics.len()
        ));
    }
    for p in problems {
        report.fail(format!("log: {p}"));
    }
    let next_seq: u64 = crate::store::meta_get(rtx, migrations::OUTBOX_NEXT_SEQ)?.unwrap_or(1);
    let relayed = log.relay_position();
    if relayed >= next_seq {
        report.fail(format!(
            "log: holds outbox position {relayed} but the state only committed up to {}",
            next_seq.saturating_sub(1)
        ));
    } else {
        report.pass(format!("log: relayed outbox up to position {relayed}"));
    }
    Ok(())
}
