//! The domain events and their envelope. The JSON form is the contract with connectors
//! (Kafka mirror, webhooks): names are the design's, payload fields keep the design's
//! camelCase, and `tests` pins the shape with a golden file. Add variants; never rename.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who caused an event: a user id, `system`, or a CLI operator.
pub type Actor = String;

/// One event as it travels: through the outbox, the log, and out to connectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        Envelope {
            id: Uuid::now_v7(),
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
        }
    };
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
