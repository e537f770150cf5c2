//! How a log line reads: one JSON object per line (`telemetry.format = "json"`) or text,
//! each with the id of the request being handled when there is one (the task-local
//! [`RequestId`], so no tracing span is made per request). Written straight into
//! tracing's line buffer: the JSON formatter tracing-subscriber ships rebuilt every
//! line through serde values and re-parsed the request span's fields, which cost /health
//! about a fifth of its server time.

use crate::http::request_id::RequestId;
use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter given to tracing's `fmt` layer.
pub struct LineFormat {
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        self.write_line(&mut w, event, RequestId::current().as_ref())
    }
}

impl LineFormat {
    fn write_line(
        &self,
        w: &mut impl Write,
        event: &Event<'_>,
        request: Option<&RequestId>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields {
            w,
            json: self.json,
            message: None,
            result: Ok(()),
        };
        if self.json {
            write!(fields.w, "{{\"timestamp\":\"")?;
            timestamp(fields.w)?;
            write!(fields.w, "\",\"level\":\"{}\",\"target\":", meta.level())?;
            json_str(fields.w, meta.target())?;
            event.record(&mut fields);
            fields.result?;
            if let Some(id) = request {
                // Only [A-Za-z0-9._-] gets into a request id: nothing to escape.
                write!(fields.w, ",\"request.id\":\"{id}\"")?;
            }
            fields.w.write_str("}\n")
        } else {
            timestamp(fields.w)?;
            write!(fields.w, " {:>5} {}:", meta.level(), meta.target())?;
            // The message first, then the other fields.
            for message in [true, false] {
                fields.message = Some(message);
                event.record(&mut fields);
            }
            fields.result?;
            if let Some(id) = request {
                write!(fields.w, " request.id={id}")?;
            }
            fields.w.write_char('\n')
        }
    }
}

/// Now, in UTC, as RFC 3339 with microseconds. The date and time up to the second are
/// formatted once per second and thread; a busy server logs many lines per second.
pub(super) fn timestamp(w: &mut impl Write) -> fmt::Result {
    thread_local! {
        static SECOND: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let t = time::OffsetDateTime::now_utc();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != t.unix_timestamp() {
            *second = t.unix_timestamp();
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
        }
        w.write_str(text)
    })?;
    write!(w, ".{:06}Z", t.microsecond())
}

/// `s` as a JSON string, quotes included.
pub(super) fn json_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// A writer that escapes what goes through it for the inside of a JSON string.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let esc = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if esc.is_empty() {
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(esc)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

/// Writes an event's fields: `,"name":value` in JSON, ` name=value` in text, the message
/// bare in text.
struct Fields<'a, W: Write> {
    w: &'a mut W,
    json: bool,
    /// `Some(true)`: only the message; `Some(false)`: all but the message.
    message: Option<bool>,
    result: fmt::Result,
}

impl<W: Write> Fields<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W, bool) -> fmt::Result) {
        if self.result.is_err()
            || self
                .message
                .is_some_and(|m| m != (field.name() == "message"))
        {
            return;
        }
        let json = self.json;
        self.result = (|| {
            if json {
                self.w.write_char(',')?;
                json_str(self.w, field.name())?;
                self.w.write_char(':')?;
            } else if field.name() == "message" {
                self.w.write_char(' ')?;
            } else {
                write!(self.w, " {}=", field.name())?;
            }
            value(self.w, json)
        })();
    }
}

impl<W: Write> Visit for Fields<'_, W> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w, json| {
            if json {
                w.write_char('"')?;
                write!(Escaped(w), "{value:?}")?;
                w.write_char('"')
            } else {
                write!(w, "{value:?}")
            }
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w, json| {
            if json {
                json_str(w, value)
            } else {
                w.write_str(value)
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w, _| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w, _| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w, _| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w, json| match (json, value.is_finite()) {
            (true, false) => w.write_str("null"),
            _ => write!(w, "{value}"),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// What `emit` logs through a subscriber using [`LineFormat`].
    fn logged(json: bool, emit: impl FnOnce()) -> String {
        let out = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .event_format(LineFormat { json })
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_parse_and_carry_every_field_escaped() {
        let text = logged(true, || {
            tracing::warn!(
                count = 3_u64,
                delta = -2_i64,
                ok = true,
                ratio = 0.5,
                nan = f64::NAN,
                path = "/a\"b\\c\n\u{1}é",
                shown = %"x\ty",
                "disk \"full\""
            );
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], module_path!());
        assert_eq!(v["message"], "disk \"full\"");
        assert_eq!(v["count"], 3);
        assert_eq!(v["delta"], -2);
        assert_eq!(v["ok"], true);
        assert_eq!(v["ratio"], 0.5);
        assert!(v["nan"].is_null());
        assert_eq!(v["path"], "/a\"b\\c\n\u{1}é");
        assert_eq!(v["shown"], "x\ty");
        assert!(v.get("request.id").is_none(), "no request, no id: {text}");
        let ts = v["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[tokio::test]
    async fn a_line_logged_while_a_request_is_handled_carries_its_id() {
        let id = RequestId::parse("req-42").unwrap();
        let out = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .event_format(LineFormat { json: true })
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        id.scope(async { tracing::info!("inside") }).await;
        tracing::info!("outside");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["message"], "inside");
        assert_eq!(lines[0]["request.id"], "req-42");
        assert_eq!(lines[1]["message"], "outside");
        assert!(lines[1].get("request.id").is_none());
    }

    #[test]
    fn text_lines_read_as_level_target_message_then_fields() {
        let text = logged(false, || tracing::info!(status = 200_u64, "request"));
        let (ts, rest) = text.split_once(' ').unwrap();
        assert!(ts.ends_with('Z'), "{text}");
        assert_eq!(
            rest,
            format!(" INFO {}: request status=200\n", module_path!())
        );
    }
}
