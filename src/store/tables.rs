//! Every redb table Souk has, in one place, named KEY_TO_VALUE. Values are codec-encoded
//! bytes (see `codec`), keys big-endian so range scans come back in order.

use redb::TableDefinition;

/// `schema_version`, outbox counters and other small facts about the database itself.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Events written by commands, waiting for the relay to move them to the log.
/// Key: outbox sequence number (dense, increasing, never reused).
pub const OUTBOX_SEQ_TO_EVENT: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");

/// Committed offsets of consumers that write redb: `group/topic/partition` → next offset.
pub const CONSUMER_TO_OFFSET: TableDefinition<&str, u64> =
    TableDefinition::new("consumer_offsets");

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
/// Audit entry id (UUIDv7, time-ordered) → entry.
pub const AUDIT_ID_TO_ENTRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit");
/// Vendor id → vendor.
pub const VENDOR_ID_TO_VENDOR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vendors");
