//! Every redb table Souk has, in one place, named KEY_TO_VALUE. Values are codec-encoded
//! bytes (see `codec`), keys big-endian so range scans come back in order.

use redb::TableDefinition;

/// `schema_version`, outbox counters and other small facts about the database itself.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Events written by commands, waiting for the relay to move them to the log.
/// Key: outbox sequence number (dense, increasing, never reused).
pub const OUTBOX_SEQ_TO_EVENT: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Committed offsets of consumers that write redb: `group/topic/partition` → next offset.
pub const CONSUMER_TO_OFFSET: TableDefinition<&str, u64> = TableDefinition::new("consumer_offsets");

// --- users and authentication (src/auth, src/services/users) ---

/// User id (16 bytes) → user record.
pub const USER_ID_TO_USER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("users");
/// Normalised email → user id; the uniqueness index.
pub const EMAIL_TO_USER_ID: TableDefinition<&[u8], &[u8]> = TableDefinition::new("user_emails");
/// Session id → session (refresh-token family, device, last seen, revocation).
pub const SESSION_ID_TO_SESSION: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// SHA-256 of a refresh token (current or already rotated) → session id.
pub const REFRESH_HASH_TO_SESSION_ID: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("session_refresh_hashes");
/// User id ++ session id → (): a user's sessions.
pub const USER_SESSION_TO_UNIT: TableDefinition<&[u8], ()> = TableDefinition::new("user_sessions");
/// API key id → key record (hash, prefix, scope, last use).
pub const API_KEY_ID_TO_API_KEY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_keys");
/// SHA-256 of an API key → API key id.
pub const API_KEY_HASH_TO_API_KEY_ID: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("api_key_hashes");
/// User id ++ API key id → (): a user's keys.
pub const USER_API_KEY_TO_UNIT: TableDefinition<&[u8], ()> = TableDefinition::new("user_api_keys");
/// SHA-256 of a single-use token (email verification, password reset, MFA login step,
/// first-admin setup) → what it grants and until when.
pub const ONE_TIME_HASH_TO_GRANT: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("one_time_tokens");
/// SHA-256 of a per-account throttle key (`login:<email>`, `mfa:<user id>`, …) → its
/// failure count and lock (src/auth/throttle.rs), so a restart keeps an account's back-off.
pub const ACCOUNT_LOCKOUT_HASH_TO_STATE: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("account_lockouts");
/// Audit entry id (UUIDv7, time-ordered) → entry.
pub const AUDIT_ID_TO_ENTRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit");
/// Vendor id → vendor.
pub const VENDOR_ID_TO_VENDOR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vendors");

// --- catalog and inventory (src/services/catalog) ---

/// Category id → category.
pub const CATEGORY_ID_TO_CATEGORY: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("categories");
/// Category slug → category id; the uniqueness index.
pub const CATEGORY_SLUG_TO_CATEGORY_ID: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("category_slugs");
/// Category id → active products in it or below it (what the tree shows).
pub const CATEGORY_ID_TO_ACTIVE_COUNT: TableDefinition<&[u8], u64> =
    TableDefinition::new("category_active_counts");
/// Category id ++ product id → (): products filed directly under a category, any status.
pub const CATEGORY_PRODUCT_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("category_products");
/// Product id → product (with its variants and image references).
pub const PRODUCT_ID_TO_PRODUCT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("products");
/// Product slug → product id; the uniqueness index.
pub const SLUG_TO_PRODUCT_ID: TableDefinition<&[u8], &[u8]> = TableDefinition::new("product_slugs");
/// Vendor id ++ product id → (): a vendor's products, any status.
pub const VENDOR_PRODUCT_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("vendor_products");
/// Vendor id ++ SKU → product id ++ variant id: SKUs are unique per vendor.
pub const VENDOR_SKU_TO_VARIANT: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("vendor_skus");
/// Listing scope ++ product id → (): active products, newest last (scanned backwards).
/// A scope is the whole catalog, a category (every ancestor too) or a vendor.
pub const LISTING_NEWEST_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("listing_newest");
/// Listing scope ++ lowest price ++ product id → ().
pub const LISTING_PRICE_TO_UNIT: TableDefinition<&[u8], ()> = TableDefinition::new("listing_price");
/// Listing scope ++ folded title prefix ++ product id → ().
pub const LISTING_NAME_TO_UNIT: TableDefinition<&[u8], ()> = TableDefinition::new("listing_name");
/// Product id ++ normalised email → a "back in stock" sign-up (catalog/back_in_stock.rs).
pub const PRODUCT_EMAIL_TO_BACK_IN_STOCK: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("back_in_stock");
/// Product id → its stock per variant and warehouse, versioned as a whole.
pub const PRODUCT_ID_TO_INVENTORY: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("inventory");
/// Warehouse id → warehouse.
pub const WAREHOUSE_ID_TO_WAREHOUSE: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("warehouses");
/// Vendor id ++ warehouse id → (): a vendor's warehouses.
pub const VENDOR_WAREHOUSE_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("vendor_warehouses");
/// Reservation id → the stock it holds, per line and warehouse.
pub const RESERVATION_ID_TO_RESERVATION: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("reservations");
/// SHA-256 (hex) of a stored blob → its metadata (type, size, dimensions, variants).
pub const BLOB_HASH_TO_MEDIA: TableDefinition<&str, &[u8]> = TableDefinition::new("media");

// --- payments, wallets and the ledger (src/services/payments, src/http/idempotency.rs) ---

/// Journal entry id (UUIDv7) → balanced journal entry.
pub const JOURNAL_ID_TO_ENTRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");
/// `account/CUR` → balance in minor units (the sum of that account's postings).
pub const ACCOUNT_TO_BALANCE: TableDefinition<&str, i64> = TableDefinition::new("ledger_balances");
/// `account/CUR` ++ 0x00 ++ journal entry id → posting amount: an account's history.
pub const ACCOUNT_ENTRY_TO_AMOUNT: TableDefinition<&[u8], i64> =
    TableDefinition::new("ledger_postings");
/// Payment id → payment.
pub const PAYMENT_ID_TO_PAYMENT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("payments");
/// Payment id → (): payments held for an admin's review.
pub const REVIEW_PAYMENT_ID_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("payment_reviews");
/// Hosted-gateway event id → payment id: each provider event is applied once.
pub const PROVIDER_EVENT_TO_PAYMENT_ID: TableDefinition<&str, &[u8]> =
    TableDefinition::new("payment_provider_events");
/// Saved payment method id → method (token and fingerprint sealed).
pub const PAYMENT_METHOD_ID_TO_METHOD: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("payment_methods");
/// User id ++ payment method id → (): a user's saved methods.
pub const USER_PAYMENT_METHOD_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("user_payment_methods");
/// Fraud subject (`user:…`, `ip:…`, `card:…`) → its recent payment attempts.
pub const FRAUD_SUBJECT_TO_ACTIVITY: TableDefinition<&str, &[u8]> =
    TableDefinition::new("fraud_activity");
/// Sequence number → payment audit entry, each carrying the HMAC of the previous one.
pub const PAYMENT_AUDIT_SEQ_TO_ENTRY: TableDefinition<u64, &[u8]> =
    TableDefinition::new("payment_audit");
/// `principal/method path/key` → the stored answer to an idempotent request.
pub const IDEMPOTENCY_KEY_TO_ANSWER: TableDefinition<&str, &[u8]> =
    TableDefinition::new("idempotency_keys");
/// Stored-at (unix seconds, big-endian) ++ scope key → (): expiry order of those answers.
pub const IDEMPOTENCY_EXPIRY_TO_UNIT: TableDefinition<&[u8], ()> =
    TableDefinition::new("idempotency_expiry");

// --- carts, orders and the checkout saga (src/services/orders) ---

/// Cart owner (`u` ++ user id, or `g` ++ SHA-256 of a guest cart token) → cart.
pub const CART_OWNER_TO_CART: TableDefinition<&[u8], &[u8]> = TableDefinition::new("carts");
/// Order id → order (with its vendor sub-orders and its history).
pub const ORDER_ID_TO_ORDER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("orders");
/// User id ++ order id → (): a buyer's orders, oldest first.
pub const USER_ORDER_TO_UNIT: TableDefinition<&[u8], ()> = TableDefinition::new("user_orders");
/// Vendor id ++ sub-order id → order id: a vendor's sub-orders, oldest first.
pub const VENDOR_SUB_ORDER_TO_ORDER_ID: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("vendor_sub_orders");
/// Sub-order id → order id.
pub const SUB_ORDER_ID_TO_ORDER_ID: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("sub_orders");
/// Due time (unix seconds, big-endian) ++ order id ++ timer kind → timer: the saga's
/// durable timers, scanned in due order.
pub const DUE_AT_TO_TIMER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("order_timers");
