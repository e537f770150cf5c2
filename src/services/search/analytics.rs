//! Search analytics: a consumer of the log's `telemetry` topic (and `orders`, for what
//! sells) keeping small aggregates in memory: per day, searches, zero-result searches and
//! searches that got feedback (click-through), per query; time-decayed query and product
//! counts for trending; popular queries for suggestions. It stores nothing: at every start
//! it reads the topics again from the oldest event kept, so it covers what log retention
//! keeps (7 days by default). It never writes redb, the log or the index.

use super::trending::{Popular, Trending};
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::log::{Consumer, EventLog, ReadError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::{Date, OffsetDateTime};

/// The consumer group name (never committed: the aggregates are rebuilt at each start).
pub const GROUP: &str = "search-analytics";
/// The topics read.
pub const TOPICS: [&str; 2] = [crate::telemetry::TOPIC, "orders"];
/// The events of those topics [`Analytics::apply`] reads; the rest (page views, order
/// updates) are passed over undecoded.
const EVENTS: &[&str] = &[
    "Search.Performed",
    "Search.Feedback",
    "Product.Viewed",
    "Order.Created",
];
/// Days of aggregates kept, and the most `days` an analytics request may ask for.
pub const MAX_DAYS: i64 = 90;
/// Distinct queries counted per day; later new ones count only in the day's totals.
const MAX_QUERIES_PER_DAY: usize = 50_000;
/// Recent searches remembered by query id, to attribute feedback to its query.
const MAX_QUERY_IDS: usize = 500_000;
const BATCH: usize = 5_000;
const IDLE: Duration = Duration::from_millis(100);

/// Trending and sorting weights of what shoppers do with a product.
pub const VIEW_WEIGHT: u64 = 1;
/// Each unit ordered counts as a purchase through search feedback does.
pub const ORDER_WEIGHT: u64 = 5;

#[derive(Default, Clone, Copy)]
struct Counts {
    searches: u64,
    zero: u64,
    clicked: u64,
}

#[derive(Default)]
struct Day {
    all: Counts,
    queries: HashMap<String, Counts>,
}

#[derive(Default)]
struct Aggregates {
    days: BTreeMap<Date, Day>,
    /// query id → (day, normalised query) of recent searches, oldest first in `order`.
    searches: HashMap<String, (Date, String)>,
    order: VecDeque<String>,
    /// Query ids whose search already counts as clicked through.
    clicked: HashSet<String>,
    /// Feedback seen before its search (they travel in different partitions).
    pending: HashSet<String>,
    trending: Trending,
    popular: Popular,
    /// The latest event time seen (unix seconds).
    latest: i64,
}

/// The aggregates and whether the consumer has read the log to its end once.
#[derive(Default)]
pub struct Analytics {
    inner: Mutex<Aggregates>,
    caught_up: AtomicBool,
}

/// Lower-cased, whitespace collapsed: "Blue  Dress " and "blue dress" are one query.
pub fn normalize(q: &str) -> String {
    q.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ratio(clicked: u64, searches: u64) -> f64 {
    if searches == 0 {
        0.0
    } else {
        (clicked as f64 / searches as f64 * 10_000.0).round() / 10_000.0
    }
}

impl Analytics {
    fn lock(&self) -> MutexGuard<'_, Aggregates> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether everything the log held when the consumer started has been read.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Folds one event in (others are ignored).
    pub fn apply(&self, e: &Envelope) {
        let t = e.occurred_at;
        let secs = t.unix_timestamp();
        let mut a = self.lock();
        a.latest = a.latest.max(secs);
        match &e.event {
            Event::SearchPerformed {
                query,
                results,
                query_id,
                ..
            } => a.search(t.date(), secs, &normalize(query), *results, query_id),
            Event::SearchFeedback {
                query_id,
                product_id,
                action,
                ..
            } => {
                let weight = match action.as_str() {
                    "purchase" => super::Action::Purchase.weight(),
                    "add_to_cart" => super::Action::AddToCart.weight(),
                    _ => super::Action::Click.weight(),
                };
                a.trending.product(product_id, weight as f64, secs);
                a.feedback(query_id);
            }
            Event::ProductViewed { product_id, .. } => {
                a.trending.product(product_id, VIEW_WEIGHT as f64, secs);
            }
            Event::OrderCreated { items, .. } => {
                for (id, qty) in order_items(items) {
                    a.trending.product(&id, (qty * ORDER_WEIGHT) as f64, secs);
                }
            }
            _ => {}
        }
    }

    /// The report for the `days` days up to and including `now`'s day.
    pub fn report(&self, now: OffsetDateTime, days: i64, limit: usize) -> Report {
        let to = now.date();
        let from = to - time::Duration::days(days.clamp(1, MAX_DAYS) - 1);
        let a = self.lock();
        let mut totals = Counts::default();
        let mut per_query: HashMap<&str, Counts> = HashMap::new();
        let mut by_day = Vec::new();
        let mut d = from;
        while d <= to {
            let c = match a.days.get(&d) {
                Some(day) => {
                    for (q, c) in &day.queries {
                        let e = per_query.entry(q.as_str()).or_default();
                        e.searches += c.searches;
                        e.zero += c.zero;
                        e.clicked += c.clicked;
                    }
                    day.all
                }
                None => Counts::default(),
            };
            totals.searches += c.searches;
            totals.zero += c.zero;
            totals.clicked += c.clicked;
            by_day.push(DayRow {
                date: d.to_string(),
                counts: c.into(),
            });
            match d.next_day() {
                Some(n) => d = n,
                None => break,
            }
        }
        let row = |(q, c): (&str, Counts)| QueryRow {
            query: q.to_string(),
            counts: c.into(),
        };
        let mut top: Vec<(&str, Counts)> = per_query.iter().map(|(q, c)| (*q, *c)).collect();
        top.sort_by(|a, b| b.1.searches.cmp(&a.1.searches).then_with(|| a.0.cmp(b.0)));
        let mut zero: Vec<(&str, Counts)> =
            top.iter().copied().filter(|(_, c)| c.zero > 0).collect();
        zero.sort_by(|a, b| b.1.zero.cmp(&a.1.zero).then_with(|| a.0.cmp(b.0)));
        Report {
            days,
            from: from.to_string(),
            to: to.to_string(),
            complete: self.caught_up(),
            totals: totals.into(),
            top_queries: top.into_iter().take(limit).map(row).collect(),
            zero_result_queries: zero.into_iter().take(limit).map(row).collect(),
            by_day,
        }
    }

    /// Trending queries and products as of `now`: (last hours, last day), `n` each.
    pub fn trending(&self, now: OffsetDateTime, n: usize) -> TrendingLists {
        let now = now.unix_timestamp();
        let a = self.lock();
        TrendingLists {
            queries_hours: a.trending.queries_hours.top(now, n),
            queries_day: a.trending.queries_day.top(now, n),
            products_hours: a.trending.products_hours.top(now, n),
            products_day: a.trending.products_day.top(now, n),
        }
    }

    /// Past queries searched (with results) at least `min` times, with their counts.
    pub fn popular_queries(&self, min: u64) -> Vec<(String, u64)> {
        self.lock().popular.eligible(min)
    }

    /// Popular past queries that the typed text leads to (see [`Popular::suggest`]).
    pub fn suggest(&self, typed: &str, min: u64, n: usize) -> Vec<String> {
        self.lock().popular.suggest(typed, min, n)
    }
}

impl Aggregates {
    fn search(&mut self, day: Date, secs: i64, q: &str, results: u64, query_id: &str) {
        let zero = u64::from(results == 0);
        let entry = self.days.entry(day).or_default();
        entry.all.searches += 1;
        entry.all.zero += zero;
        if !q.is_empty()
            && (entry.queries.len() < MAX_QUERIES_PER_DAY || entry.queries.contains_key(q))
        {
            let c = entry.queries.entry(q.to_string()).or_default();
            c.searches += 1;
            c.zero += zero;
        }
        while self.days.len() > MAX_DAYS as usize {
            self.days.pop_first();
        }
        if !q.is_empty() && results > 0 {
            self.trending.query(q, secs);
            self.popular.add(q);
        }
        if query_id.is_empty() || self.searches.contains_key(query_id) {
            return;
        }
        self.searches
            .insert(query_id.to_string(), (day, q.to_string()));
        self.order.push_back(query_id.to_string());
        while self.order.len() > MAX_QUERY_IDS {
            if let Some(old) = self.order.pop_front() {
                self.searches.remove(&old);
                self.clicked.remove(&old);
            }
        }
        if self.pending.remove(query_id) {
            self.click(query_id);
        }
    }

    fn feedback(&mut self, query_id: &str) {
        if self.clicked.contains(query_id) {
            return;
        }
        if self.searches.contains_key(query_id) {
            self.click(query_id);
        } else {
            if self.pending.len() >= MAX_QUERY_IDS {
                self.pending.clear();
            }
            self.pending.insert(query_id.to_string());
        }
    }

    /// Counts the search `query_id` as clicked through, once.
    fn click(&mut self, query_id: &str) {
        let Some((day, q)) = self.searches.get(query_id).cloned() else {
            return;
        };
        self.clicked.insert(query_id.to_string());
        if let Some(d) = self.days.get_mut(&day) {
            d.all.clicked += 1;
            if let Some(c) = d.queries.get_mut(&q) {
                c.clicked += 1;
            }
        }
    }
}

/// (product id, quantity) of an `Order.Created` event's items.
pub fn order_items(items: &serde_json::Value) -> Vec<(String, u64)> {
    let Some(lines) = items.as_array() else {
        return Vec::new();
    };
    lines
        .iter()
        .filter_map(|l| {
            let id = l.get("productId")?.as_str()?.to_string();
            let qty = l.get("quantity").and_then(|q| q.as_u64()).unwrap_or(1);
            Some((id, qty))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CountsView {
    pub searches: u64,
    pub zero_result_searches: u64,
    pub clicked_searches: u64,
    /// Searches that got feedback (click, add to cart, purchase) over searches.
    pub click_through_rate: f64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        CountsView {
            searches: c.searches,
            zero_result_searches: c.zero,
            clicked_searches: c.clicked,
            click_through_rate: ratio(c.clicked, c.searches),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    pub date: String,
    #[serde(flatten)]
    pub counts: CountsView,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryRow {
    pub query: String,
    #[serde(flatten)]
    pub counts: CountsView,
}

/// `GET /api/v1/admin/search/analytics`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub days: i64,
    pub from: String,
    pub to: String,
    /// False while the aggregates are still being rebuilt from the log after a start.
    pub complete: bool,
    pub totals: CountsView,
    pub top_queries: Vec<QueryRow>,
    pub zero_result_queries: Vec<QueryRow>,
    pub by_day: Vec<DayRow>,
}

pub struct TrendingLists {
    pub queries_hours: Vec<(String, f64)>,
    pub queries_day: Vec<(String, f64)>,
    pub products_hours: Vec<(String, f64)>,
    pub products_day: Vec<(String, f64)>,
}

/// Starts the consumer thread; it stops when `stop` is set.
pub fn spawn(
    search: Arc<super::SearchState>,
    log: EventLog,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("search-analytics".into())
        .spawn(move || {
            // Made once: after a read error the consumer carries on where it was, so no
            // event is counted twice.
            let mut consumers: Option<Vec<Consumer>> = None;
            while !stop.load(Ordering::Acquire) {
                let result = match consumers.as_mut() {
                    Some(cs) => follow(&search.analytics, cs, &stop),
                    None => TOPICS
                        .iter()
                        .map(|t| log.consumer(GROUP, t).map(|c| c.only(EVENTS)))
                        .collect::<Result<Vec<_>>>()
                        .map(|cs| consumers = Some(cs)),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "search analytics");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        })
        .map_err(Error::internal)
}

fn follow(a: &Analytics, consumers: &mut [Consumer], stop: &AtomicBool) -> Result<()> {
    while !stop.load(Ordering::Acquire) {
        let mut read = 0;
        for c in consumers.iter_mut() {
            match c.poll(BATCH) {
                Ok(records) => {
                    read += records.len();
                    for r in &records {
                        a.apply(&r.envelope);
                    }
                }
                // Statistics, not money: skip what retention removed, and say so.
                Err(ReadError::FellBehind(f)) => {
                    tracing::warn!(error = %f, "search analytics skips events removed by retention");
                    c.seek(f.partition, f.first_available);
                }
                Err(ReadError::Other(e)) => return Err(e),
            }
            read += c.skipped();
        }
        if read == 0 {
            a.caught_up.store(true, Ordering::Release);
            std::thread::sleep(IDLE);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_events_read_are_named_as_in_the_catalogue() {
        let named = |n: &&str| Event::CATALOGUE.iter().any(|(c, _)| c == n);
        assert!(EVENTS.iter().all(named));
        assert!(super::super::consumer::POPULARITY_EVENTS.iter().all(named));
    }

    fn searched(q: &str, results: u64, id: &str, at: OffsetDateTime) -> Envelope {
        Envelope::new(
            Event::SearchPerformed {
                query: q.into(),
                results,
                corrected: None,
                user_id: None,
                session_id: None,
                timestamp: at,
                query_id: id.into(),
                filters: serde_json::Value::Null,
                latency_ms: 1.0,
            },
            at,
        )
    }

    fn clicked(id: &str, at: OffsetDateTime) -> Envelope {
        Envelope::new(
            Event::SearchFeedback {
                query_id: id.into(),
                product_id: "p-1".into(),
                action: "click".into(),
                user_id: None,
                session_id: None,
                timestamp: at,
            },
            at,
        )
    }

    #[test]
    fn click_through_counts_each_search_once_whatever_the_order() {
        let a = Analytics::default();
        let day1 = datetime!(2026-11-25 10:00 UTC);
        let day2 = datetime!(2026-11-26 10:00 UTC);
        // Feedback read before its search (another partition), twice.
        a.apply(&clicked("q1", day1));
        a.apply(&clicked("q1", day1));
        a.apply(&searched("Blue  Dress", 4, "q1", day1));
        a.apply(&searched("blue dress", 4, "q2", day2));
        a.apply(&clicked("q2", day2));
        a.apply(&searched("blue dress", 4, "q3", day2));
        a.apply(&searched("zzz", 0, "q4", day2));
        let r = a.report(day2, 2, 10);
        assert_eq!(
            (r.from.as_str(), r.to.as_str()),
            ("2026-11-25", "2026-11-26")
        );
        assert_eq!(r.totals.searches, 4);
        assert_eq!(r.totals.clicked_searches, 2);
        assert_eq!(r.totals.zero_result_searches, 1);
        assert_eq!(r.top_queries[0].query, "blue dress");
        assert_eq!(r.top_queries[0].counts.searches, 3);
        assert_eq!(r.top_queries[0].counts.click_through_rate, 0.6667);
        assert_eq!(r.zero_result_queries.len(), 1);
        assert_eq!(r.zero_result_queries[0].query, "zzz");
        let days: Vec<u64> = r.by_day.iter().map(|d| d.counts.searches).collect();
        assert_eq!(days, vec![1, 3]);
        // Only today.
        let today = a.report(day2, 1, 10);
        assert_eq!(today.totals.searches, 3);
        assert_eq!(today.totals.clicked_searches, 1);
    }

    #[test]
    fn order_items_read_product_and_quantity() {
        let items = serde_json::json!([
            {"productId": "p-1", "quantity": 2},
            {"productId": "p-2"},
            {"sku": "x"}
        ]);
        assert_eq!(
            order_items(&items),
            vec![("p-1".to_string(), 2), ("p-2".to_string(), 1)]
        );
        assert!(order_items(&serde_json::Value::Null).is_empty());
    }
}
