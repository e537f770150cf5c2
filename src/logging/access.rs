//! The access log: one line per request, formatted here and put straight into the log
//! buffer rather than sent through tracing's dispatcher, formatter and field visitors,
//! which cost /health about a tenth of its server CPU per request. The line reads as any
//! other event's would under [`super::LineFormat`] (same keys, order and text form), and
//! `telemetry.level` still decides: a filter such as `info,souk::access=off` silences it.

use super::format::{json_str, timestamp};
use super::{Line, Shared, Sink};
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The target access lines carry, as if logged with `tracing::info!(target: ...)`.
pub const TARGET: &str = "souk::access";

/// Where access lines go once [`install`]ed; before that (a library user without souk's
/// logging, tests) they go through tracing like any other event.
static OUT: OnceLock<Out> = OnceLock::new();

struct Out {
    shared: Arc<Shared>,
    json: bool,
}

/// Sends access lines to `sink` in the given form from now on (the binary calls this once
/// it has set up tracing with the same sink).
pub fn install(sink: &Sink, json: bool) {
    let _ = OUT.set(Out {
        shared: sink.shared.clone(),
        json,
    });
}

/// One handled request, as the access log records it.
pub struct Request<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub id: &'a str,
}

/// Logs `r` if the filter lets access lines through.
pub fn log(r: &Request<'_>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(out) = OUT.get() else {
        tracing::event!(
            target: TARGET,
            tracing::Level::INFO,
            http.method = r.method,
            http.route = r.route,
            http.status = r.status,
            latency_ms = r.elapsed.as_secs_f64() * 1000.0,
            request.id = r.id,
            "request"
        );
        return;
    };
    let mut line = String::with_capacity(256);
    if format(&mut line, r, out.json).is_ok() {
        let _ = Line {
            shared: &out.shared,
            at_once: false,
        }
        .write_all(line.as_bytes());
    }
}

fn format(w: &mut String, r: &Request<'_>, json: bool) -> fmt::Result {
    if json {
        w.push_str("{\"timestamp\":\"");
        timestamp(w)?;
        w.push_str("\",\"level\":\"INFO\",\"target\":");
        json_str(w, TARGET)?;
        w.push_str(",\"message\":\"request\",\"http.method\":");
        json_str(w, r.method)?;
        w.push_str(",\"http.route\":");
        json_str(w, r.route)?;
        write!(w, ",\"http.status\":{},\"latency_ms\":", r.status)?;
        millis(w, r.elapsed)?;
        w.push_str(",\"request.id\":");
        json_str(w, r.id)?;
        w.push_str("}\n");
    } else {
        timestamp(w)?;
        write!(
            w,
            "  INFO {TARGET}: request http.method={} http.route={} http.status={} latency_ms=",
            r.method, r.route, r.status
        )?;
        millis(w, r.elapsed)?;
        w.push_str(" request.id=");
        w.push_str(r.id);
        w.push('\n');
    }
    Ok(())
}

/// `d` in milliseconds with three decimals (microseconds), as a JSON number.
fn millis(w: &mut String, d: Duration) -> fmt::Result {
    let micros = d.as_micros();
    write!(w, "{}.{:03}", micros / 1000, micros % 1000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn line(json: bool, route: &str) -> String {
        let mut s = String::new();
        let r = Request {
            method: "GET",
            route,
            status: 404,
            elapsed: Duration::from_nanos(2_345_678),
            id: "req-1",
        };
        format(&mut s, &r, json).unwrap();
        s
    }

    #[test]
    fn json_access_lines_parse_with_every_field() {
        let text = line(true, "/p/{slug}\"x");
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "souk::access");
        assert_eq!(v["message"], "request");
        assert_eq!(v["http.method"], "GET");
        assert_eq!(v["http.route"], "/p/{slug}\"x", "escaped, read back whole");
        assert_eq!(v["http.status"], 404);
        assert_eq!(v["latency_ms"], 2.345);
        assert_eq!(v["request.id"], "req-1");
        let ts = v["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn text_access_lines_read_like_other_events() {
        let text = line(false, "/health");
        let (ts, rest) = text.split_once(' ').unwrap();
        assert!(ts.ends_with('Z'), "{text}");
        assert_eq!(
            rest,
            " INFO souk::access: request http.method=GET http.route=/health http.status=404 \
             latency_ms=2.345 request.id=req-1\n"
        );
    }

    #[test]
    fn milliseconds_keep_three_decimals() {
        for (nanos, shown) in [
            (0, "0.000"),
            (999, "0.000"),
            (1_000, "0.001"),
            (12_000_000_000, "12000.000"),
        ] {
            let mut s = String::new();
            millis(&mut s, Duration::from_nanos(nanos)).unwrap();
            assert_eq!(s, shown);
        }
    }
}
