//! The domain events and their envelope. The JSON form is the contract with connectors
//! (Kafka mirror, webhooks): names are the design's, payload fields keep the design's
//! camelCase, and `tests` pins the shape with a golden file. Add variants; never rename.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who caused an event: a user id, `system`, or a CLI operator.
pub type Actor = String;

/// One event as it travels: through the outbox, the log, and out to connectors.
/// Deserialised by hand (below): serde's `flatten` would buffer every field of every
/// event read from the log before decoding it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub id: Uuid,
    #[serde(flatten)]
    pub event: Event,
    pub topic: String,
    /// The aggregate id; it chooses the partition, so one aggregate's events stay in order.
    pub key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub correlation_id: Option<String>,
    pub actor: Option<Actor>,
}

impl Envelope {
    pub fn new(event: Event, occurred_at: OffsetDateTime) -> Self {
        Self::identified(Uuid::now_v7(), event, occurred_at)
    }

    /// As [`Envelope::new`] with the id given.
    pub fn identified(id: Uuid, event: Event, occurred_at: OffsetDateTime) -> Self {
        Envelope {
            id,
            topic: event.topic().to_string(),
            key: event.key(),
            event,
            occurred_at,
            correlation_id: None,
            actor: None,
        }
    }

    pub fn with_actor(mut self, actor: impl Into<Actor>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn with_correlation(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    pub fn type_name(&self) -> &'static str {
        self.event.type_name()
    }
}

/// Serialises RFC 3339 timestamps the same way everywhere (UTC, `Z`).
pub mod ts {
    pub use time::serde::rfc3339::{deserialize, serialize};
}

macro_rules! events {
    ($( $variant:ident = $name:literal, topic $topic:literal, key $key:ident {
        $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)?
    } )*) => {
        /// Every event Souk emits. `type` is the design's name; `payload` its fields.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "payload")]
        pub enum Event {
            $(
                #[serde(rename = $name, rename_all = "camelCase")]
                $variant {
                    $( $(#[$fattr])* $field: $ty, )*
                },
            )*
        }

        impl Event {
            pub fn type_name(&self) -> &'static str {
                match self { $( Event::$variant { .. } => $name, )* }
            }
            pub fn topic(&self) -> &'static str {
                match self { $( Event::$variant { .. } => $topic, )* }
            }
            pub fn key(&self) -> String {
                match self { $( Event::$variant { $key, .. } => $key.to_string(), )* }
            }
            /// Every (type, topic) pair, for documentation and `souk log` help.
            pub const CATALOGUE: &'static [(&'static str, &'static str)] = &[ $( ($name, $topic), )* ];
            const NAMES: &'static [&'static str] = &[ $( $name, )* ];

            /// The event of type `name` from its payload.
            fn from_payload<'de, D: Deserializer<'de>>(name: &str, payload: D) -> Result<Event, D::Error> {
                match name {
                    $( $name => {
                        let payload::$variant { $( $field, )* } = payload::$variant::deserialize(payload)?;
                        Ok(Event::$variant { $( $field, )* })
                    } )*
                    other => Err(de::Error::unknown_variant(other, Self::NAMES)),
                }
            }
        }

        /// Each variant's payload as a struct of its own, so the envelope can decode a
        /// payload straight from the input once it knows the type.
        mod payload {
            use super::*;
            $(
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                pub(super) struct $variant {
                    $( $(#[$fattr])* pub(super) $field: $ty, )*
                }
            )*
        }
    };
}

/// The type of an envelope's JSON as [`Envelope`] writes it (`{"id":"<uuid>","type":"`
/// first), read without decoding anything; `None` for JSON laid out any other way.
/// Consumers use it to pass over events they ignore.
pub fn peek_type(json: &[u8]) -> Option<&str> {
    const HEAD: &[u8] = br#"{"id":""#;
    const TYPE: &[u8] = br#"","type":""#;
    let rest = json.strip_prefix(HEAD)?.get(36..)?.strip_prefix(TYPE)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    match rest.get(end) {
        Some(b'"') => std::str::from_utf8(&rest[..end]).ok(),
        _ => None,
    }
}

/// The envelope's fields; anything else is skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Id,
    Type,
    Payload,
    Topic,
    Key,
    OccurredAt,
    CorrelationId,
    Actor,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Rfc3339(#[serde(with = "ts")] OffsetDateTime);

/// Decodes a payload whose type was already read.
struct PayloadOf<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for PayloadOf<'_> {
    type Value = Event;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        Event::from_payload(self.0, d)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

/// Fails on a field given twice, as derived decoders do.
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut id = None;
        let mut kind: Option<String> = None;
        let mut event = None;
        // A payload that came before its type (JSON objects are unordered).
        let mut early: Option<serde_json::Value> = None;
        let mut topic = None;
        let mut key = None;
        let mut occurred_at = None;
        let mut correlation_id = None;
        let mut actor = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Id => once(&mut id, "id", map.next_value()?)?,
                Field::Type => once(&mut kind, "type", map.next_value()?)?,
                Field::Payload => match &kind {
                    Some(name) => {
                        once(&mut event, "payload", map.next_value_seed(PayloadOf(name))?)?
                    }
                    None => once(&mut early, "payload", map.next_value()?)?,
                },
                Field::Topic => once(&mut topic, "topic", map.next_value()?)?,
                Field::Key => once(&mut key, "key", map.next_value()?)?,
                Field::OccurredAt => once(
                    &mut occurred_at,
                    "occurred_at",
                    map.next_value::<Rfc3339>()?.0,
                )?,
                Field::CorrelationId => {
                    once(&mut correlation_id, "correlation_id", map.next_value()?)?
                }
                Field::Actor => once(&mut actor, "actor", map.next_value()?)?,
                Field::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        let event = match (event, early) {
            (Some(e), _) => e,
            (None, Some(p)) => Event::from_payload(&kind, p).map_err(de::Error::custom)?,
            (None, None) => return Err(de::Error::missing_field("payload")),
        };
        Ok(Envelope {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            event,
            topic: topic.ok_or_else(|| de::Error::missing_field("topic"))?,
            key: key.ok_or_else(|| de::Error::missing_field("key"))?,
            occurred_at: occurred_at.ok_or_else(|| de::Error::missing_field("occurred_at"))?,
            correlation_id: correlation_id.flatten(),
            actor: actor.flatten(),
        })
    }
}

type Ts = OffsetDateTime;

events! {
    UserRegistered = "User.Registered", topic "users", key user_id {
        user_id: String, email: String, role: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    UserProfileUpdated = "User.ProfileUpdated", topic "users", key user_id {
        user_id: String, changes: serde_json::Value,
        #[serde(with = "ts")] timestamp: Ts,
    }
    UserDeleted = "User.Deleted", topic "users", key user_id {
        user_id: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    ProductCreated = "Product.Created", topic "products", key product_id {
        product_id: String, vendor_id: String, category: String, price: i64,
        #[serde(with = "ts")] timestamp: Ts,
    }
    ProductUpdated = "Product.Updated", topic "products", key product_id {
        product_id: String, changes: serde_json::Value,
        #[serde(with = "ts")] timestamp: Ts,
    }
    ProductArchived = "Product.Archived", topic "products", key product_id {
        product_id: String, vendor_id: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    InventoryUpdated = "Inventory.Updated", topic "inventory", key product_id {
        product_id: String, quantity: i64, warehouse: String,
        #[serde(with = "ts")] timestamp: Ts,
        // Added for the catalog: which variant, and what is left to sell after the change.
        #[serde(default)] variant_id: String,
        #[serde(default)] available: i64,
    }
    ProductBackInStock = "Product.BackInStock", topic "inventory", key product_id {
        product_id: String, variant_id: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    OrderCreated = "Order.Created", topic "orders", key order_id {
        order_id: String, user_id: String, items: serde_json::Value, total: i64,
        #[serde(with = "ts")] timestamp: Ts,
    }
    OrderStatusChanged = "Order.StatusChanged", topic "orders", key order_id {
        order_id: String, previous_status: String, new_status: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    OrderCompleted = "Order.Completed", topic "orders", key order_id {
        order_id: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    PaymentInitiated = "Payment.Initiated", topic "payments", key payment_id {
        payment_id: String, order_id: Option<String>, amount: i64, method: String,
        #[serde(with = "ts")] timestamp: Ts,
        // Added for payments: the amount's currency.
        #[serde(default)] currency: String,
    }
    PaymentCompleted = "Payment.Completed", topic "payments", key payment_id {
        payment_id: String, order_id: Option<String>, status: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    PaymentFailed = "Payment.Failed", topic "payments", key payment_id {
        payment_id: String, order_id: Option<String>, reason: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    PaymentRefunded = "Payment.Refunded", topic "payments", key payment_id {
        payment_id: String, order_id: Option<String>, amount: i64, reason: String,
        #[serde(with = "ts")] timestamp: Ts,
        // Added for payments: the amount's currency.
        #[serde(default)] currency: String,
    }
    VendorApproved = "Vendor.Approved", topic "vendors", key vendor_id {
        vendor_id: String, store_name: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    VendorSuspended = "Vendor.Suspended", topic "vendors", key vendor_id {
        vendor_id: String, reason: String,
        #[serde(with = "ts")] timestamp: Ts,
    }
    PayoutProcessed = "Payout.Processed", topic "payouts", key vendor_id {
        vendor_id: String, amount: i64,
        #[serde(with = "ts")] timestamp: Ts,
    }
    // Telemetry: high-volume, best effort, appended straight to the log by
    // `crate::telemetry` (never through the outbox). `userId` is set for signed-in
    // visitors, `sessionId` is the visitor's opaque session (signed in or not).
    SearchPerformed = "Search.Performed", topic "telemetry", key query {
        query: String, results: u64,
        #[serde(default)] corrected: Option<String>,
        #[serde(default)] user_id: Option<String>,
        #[serde(default)] session_id: Option<String>,
        #[serde(with = "ts")] timestamp: Ts,
        // The answer's query_id (feedback names it), the filters and sort as asked, and
        // how long the engine took.
        #[serde(default)] query_id: String,
        #[serde(default)] filters: serde_json::Value,
        #[serde(default)] latency_ms: f64,
    }
    SearchFeedback = "Search.Feedback", topic "telemetry", key product_id {
        query_id: String, product_id: String, action: String,
        #[serde(default)] user_id: Option<String>,
        #[serde(default)] session_id: Option<String>,
        #[serde(with = "ts")] timestamp: Ts,
    }
    PageViewed = "Page.Viewed", topic "telemetry", key path {
        path: String,
        #[serde(default)] user_id: Option<String>,
        #[serde(default)] session_id: Option<String>,
        #[serde(default)] referrer: Option<String>,
        #[serde(with = "ts")] timestamp: Ts,
    }
    ProductViewed = "Product.Viewed", topic "telemetry", key product_id {
        product_id: String,
        #[serde(default)] user_id: Option<String>,
        #[serde(default)] session_id: Option<String>,
        #[serde(with = "ts")] timestamp: Ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn viewed() -> Envelope {
        Envelope::new(
            Event::ProductViewed {
                product_id: "p-1".into(),
                user_id: Some("u-1".into()),
                session_id: None,
                timestamp: datetime!(2026-11-26 09:30 UTC),
            },
            datetime!(2026-11-26 09:30:01 UTC),
        )
        .with_correlation("req-1")
    }

    #[test]
    fn decodes_what_it_encodes_whatever_the_field_order() {
        let e = viewed();
        let as_written = serde_json::to_string(&e).unwrap();
        assert!(as_written.find("\"type\"") < as_written.find("\"payload\""));
        assert_eq!(serde_json::from_str::<Envelope>(&as_written).unwrap(), e);
        // A serde_json::Value sorts its keys: the payload now comes before its type.
        let sorted = serde_json::to_string(&serde_json::to_value(&e).unwrap()).unwrap();
        assert!(sorted.find("\"payload\"") < sorted.find("\"type\""));
        assert_eq!(serde_json::from_str::<Envelope>(&sorted).unwrap(), e);
    }

    #[test]
    fn the_type_is_peeked_from_what_the_envelope_writes_and_nothing_else() {
        let json = serde_json::to_vec(&viewed()).unwrap();
        assert_eq!(peek_type(&json), Some("Product.Viewed"));
        let sorted = serde_json::to_vec(&serde_json::to_value(viewed()).unwrap()).unwrap();
        assert_eq!(peek_type(&sorted), None);
        for odd in [
            &br#"{"id":"short","type":"Page.Viewed"}"#[..],
            br#"{"id":"0199c0de-0000-7000-8000-000000000001","type":"Page.Vie"#,
            br#"{"id":"0199c0de-0000-7000-8000-000000000001","type":"Page\"Viewed"}"#,
            b"",
        ] {
            assert_eq!(peek_type(odd), None, "{}", String::from_utf8_lossy(odd));
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_absent_options_are_none() {
        let mut v = serde_json::to_value(viewed()).unwrap();
        v["extra"] = serde_json::json!({"nested": [1, 2]});
        v.as_object_mut().unwrap().remove("correlation_id");
        v.as_object_mut().unwrap().remove("actor");
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back.correlation_id, None);
        assert_eq!(back.event, viewed().event);
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        let good = serde_json::to_value(viewed()).unwrap();
        let fails = |edit: &dyn Fn(&mut serde_json::Value), want: &str| {
            let mut v = good.clone();
            edit(&mut v);
            let err = serde_json::from_value::<Envelope>(v)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err}");
        };
        fails(
            &|v| v["type"] = "Product.Teleported".into(),
            "unknown variant",
        );
        fails(
            &|v| v["payload"] = serde_json::json!({"userId": 1}),
            "invalid type",
        );
        fails(
            &|v| drop(v.as_object_mut().unwrap().remove("payload")),
            "missing field `payload`",
        );
        fails(
            &|v| drop(v.as_object_mut().unwrap().remove("type")),
            "missing field `type`",
        );
        fails(
            &|v| drop(v.as_object_mut().unwrap().remove("occurred_at")),
            "occurred_at",
        );
        fails(&|v| v["occurred_at"] = "yesterday".into(), "");
        let twice = r#"{"id":"0199c0de-0000-7000-8000-000000000001","id":"0199c0de-0000-7000-8000-000000000001"}"#;
        let err = serde_json::from_str::<Envelope>(twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `id`"), "{err}");
    }
}
