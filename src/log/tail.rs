//! `souk log tail`: a topic's events as JSON lines (one [`LogRecord`] per line:
//! `partition`, `offset` and the envelope's fields), partition by partition, each in
//! offset order. Reads only; never commits a consumer offset.

use super::{EventLog, LogRecord, ReadError};
use crate::error::{Error, Result};
use crate::log::event::Event;
use std::collections::BTreeSet;
use std::io::Write;

/// Records read per partition per step.
const PAGE: usize = 1000;

/// What a tail printed, and what a person should know about it (printed to stderr).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TailSummary {
    pub printed: u64,
    pub notes: Vec<String>,
}

/// Every topic a tail may ask for: the catalogue's and any the log holds.
pub fn known_topics(log: &EventLog) -> Vec<String> {
    let mut names: BTreeSet<String> = Event::CATALOGUE
        .iter()
        .map(|(_, t)| t.to_string())
        .collect();
    names.extend(log.topics().into_iter().map(|t| t.name));
    names.into_iter().collect()
}

/// Prints `topic`'s events from offset `from` (default: the oldest kept) in `partition`
/// (default: all) to `out`. An offset below a partition's retention horizon starts at the
/// horizon, with a note saying so.
pub fn tail(
    log: &EventLog,
    topic: &str,
    from: Option<u64>,
    partition: Option<u16>,
    out: &mut impl Write,
) -> Result<TailSummary> {
    let known = known_topics(log);
    if !known.iter().any(|t| t == topic) {
        return Err(Error::BadRequest(format!(
            "unknown topic `{topic}`; known topics: {}",
            known.join(", ")
        )));
    }
    let count = log.partitions(topic);
    let partitions: Vec<u16> = match partition {
        Some(p) if p < count => vec![p],
        Some(p) => {
            return Err(Error::BadRequest(format!(
                "topic {topic} has partitions 0 to {}, not {p}",
                count - 1
            )));
        }
        None => (0..count).collect(),
    };
    let mut summary = TailSummary::default();
    for p in partitions {
        let mut next = from.unwrap_or(0);
        loop {
            let records = match log.read(topic, p, next, PAGE) {
                Ok(r) => r,
                Err(ReadError::FellBehind(f)) => {
                    if from.is_some() || next > 0 {
                        summary.notes.push(format!(
                            "{topic}/{p}: offsets {next} to {} were deleted by retention; continuing at {}",
                            f.first_available - 1,
                            f.first_available
                        ));
                    }
                    next = f.first_available;
                    continue;
                }
                Err(ReadError::Other(e)) => return Err(e),
            };
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            for r in &records {
                write_line(out, r)?;
                summary.printed += 1;
            }
        }
    }
    out.flush().map_err(output_error)?;
    Ok(summary)
}

fn write_line(out: &mut impl Write, r: &LogRecord) -> Result<()> {
    serde_json::to_writer(&mut *out, r)
        .map_err(|e| Error::Internal(format!("cannot write output: {e}")))?;
    out.write_all(b"\n").map_err(output_error)
}

fn output_error(e: std::io::Error) -> Error {
    Error::Internal(format!("cannot write output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, event};
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn prints_json_lines_and_names_known_topics() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), &config(2), Clock::default()).unwrap();
        let evs: Vec<_> = (0..7).map(|i| event(&format!("o-{i}"))).collect();
        log.append(&evs).unwrap();
        let mut out = Vec::new();
        let s = tail(&log, "orders", None, None, &mut out).unwrap();
        assert_eq!(s.printed, 7);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 7);
        assert!(
            lines
                .iter()
                .all(|l| l["type"] == "Order.Completed" && l["topic"] == "orders")
        );
        let mut out = Vec::new();
        let s = tail(&log, "orders", Some(1), Some(1), &mut out).unwrap();
        let n1 = log.topic("orders").unwrap().partitions[1].next;
        assert_eq!(s.printed, n1.saturating_sub(1));
        // a catalogue topic with no events yet prints nothing; an unknown one names the known
        assert_eq!(
            tail(&log, "payouts", None, None, &mut Vec::new())
                .unwrap()
                .printed,
            0
        );
        let e = tail(&log, "order", None, None, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown topic `order`") && e.contains("orders") && e.contains("payments"),
            "{e}"
        );
        assert!(tail(&log, "orders", None, Some(2), &mut Vec::new()).is_err());
    }
}
