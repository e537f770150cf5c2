//! Time, behind a handle so tests can move it. Everything reads "now" from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// The system clock plus an offset that only tests change.
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let off = self.offset_secs.load(Ordering::Relaxed);
        OffsetDateTime::now_utc() + time::Duration::seconds(off)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: time::Duration) {
        self.offset_secs
            .fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }
}

/// A UUIDv7 for ids that only need to be unique (request ids, telemetry events): this
/// millisecond and 74 random bits from the thread's user-space generator. `Uuid::now_v7`
/// asks the kernel for its random bits, a system call on every request, and also orders
/// the ids made within one millisecond, which these ids do not need.
pub fn loose_v7() -> uuid::Uuid {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand::random()).into_uuid()
}

/// RFC 3339 in UTC with a `Z`, as the API shows time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_ids_are_version_7_stamped_now_and_distinct() {
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let ids: std::collections::HashSet<uuid::Uuid> = (0..10_000).map(|_| loose_v7()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, _) = id.get_timestamp().unwrap().to_unix();
            assert!(
                (before..=before + 2).contains(&(secs as i64)),
                "{secs} vs {before}"
            );
        }
    }
}
