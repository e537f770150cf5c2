//! The one typed configuration: defaults, then `config.toml`, then `SOUK_*` environment
//! variables (`__` separates nesting levels: `SOUK_HTTP__LISTEN=0.0.0.0:443`), then CLI flags.
//! It is validated once at start; an unknown key, a wrong type or an impossible value
//! stops start-up with a message naming the key. Never a global: it lives in `AppState`.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the three stores, blobs and keys live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
    pub telemetry: TelemetryConfig,
    pub auth: AuthConfig,
    pub mail: MailConfig,
    pub catalog: CatalogConfig,
    pub payments: PaymentsConfig,
    pub orders: OrdersConfig,
    pub search: SearchConfig,
    pub storefront: StorefrontConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener that only redirects to HTTPS ("" = none).
    pub redirect_listen: Option<SocketAddr>,
    /// The URL people reach the store at; used in links and redirects ("" = derived).
    pub public_url: String,
    pub body_limit_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    pub timeouts: Timeouts,
    pub rate_limit: RateLimit,
    /// Addresses of TLS-terminating proxies in front of Souk. Only for requests from these
    /// peers is `X-Forwarded-For` believed, to find the client address the rate limit keys on.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub default_secs: u64,
    pub search_secs: u64,
    pub payment_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub enabled: bool,
    /// Sustained requests per second per client address.
    pub per_second: u32,
    /// How many requests a client may send in a burst.
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Generate a certificate for `hosts` on first start, keep it in data/keys.
    SelfSigned,
    /// Use `cert_path` and `key_path` (PEM) as they are; reloaded on SIGHUP.
    Files,
    /// Plain HTTP, for running behind a TLS-terminating proxy. Never the default.
    OffBehindProxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub hosts: Vec<String>,
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    pub min_version: TlsVersion,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub partitions: u16,
    pub retention_hours: u64,
    /// Per topic; the oldest events go first when a topic grows past it.
    pub retention_bytes: u64,
    /// How often the retention sweep runs.
    pub retention_interval_secs: u64,
    /// Past this size a topic's in-memory table is written out to disk; bounds the
    /// memory the log holds (and replays from its journal at start).
    pub memtable_mib: u64,
    /// Block cache for reading the log back (consumers, `souk log tail`).
    pub cache_mib: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Most commands the writer thread commits together in one fsync.
    pub group_commit_max: usize,
    /// redb page cache.
    pub cache_mib: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// If set, `/metrics` requires `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// If set, `/metrics` is served only on this separate plain-HTTP listener.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// tracing filter, e.g. "info" or "souk=debug,info".
    pub level: String,
    /// "json" (one line per event) or "pretty".
    pub format: String,
}

/// Passwords, tokens and lockout (`[auth]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// argon2id memory in KiB (OWASP: 19456 = 19 MiB). At least 8 × parallelism.
    pub argon2_memory_kib: u32,
    /// argon2id passes (OWASP: 2).
    pub argon2_iterations: u32,
    /// argon2id lanes (OWASP: 1).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; more wait, so a login flood cannot exhaust memory.
    pub max_concurrent_hashes: usize,
    /// Access-token (JWT) lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh-token (and so session) lifetime.
    pub refresh_token_ttl_secs: u64,
    /// `iss` and `aud` of access tokens.
    pub issuer: String,
    pub audience: String,
    /// Failed attempts on one account before the first lock.
    pub lockout_account_failures: u32,
    /// Failed attempts from one client address before the first lock.
    pub lockout_address_failures: u32,
    /// First lock length; doubles with each further failure, up to `lockout_max_secs`.
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
    /// Failures are forgotten after this long without one.
    pub lockout_forget_secs: u64,
    /// Password-reset link lifetime.
    pub reset_token_ttl_secs: u64,
    /// Email-verification link lifetime.
    pub verify_token_ttl_secs: u64,
    /// How long the second login step (MFA code) may wait after the password.
    pub mfa_token_ttl_secs: u64,
    /// How often the auth sweep deletes expired sessions, single-use tokens and forgotten
    /// lockouts.
    pub sweep_interval_secs: u64,
    /// How often sessions' last-seen times noted by requests are written (batched).
    pub last_seen_flush_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 4,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            issuer: "souk".into(),
            audience: "souk-api".into(),
            lockout_account_failures: 5,
            lockout_address_failures: 20,
            lockout_base_secs: 30,
            lockout_max_secs: 3600,
            lockout_forget_secs: 24 * 3600,
            reset_token_ttl_secs: 30 * 60,
            verify_token_ttl_secs: 48 * 3600,
            mfa_token_ttl_secs: 5 * 60,
            sweep_interval_secs: 600,
            last_seen_flush_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refuses servers without it.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test sink.
    Plain,
}

/// Outgoing mail (`[mail]`). An empty `smtp_host` writes each message as a .eml file under
/// `<data_dir>/mail/` instead, where an admin can read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_username: String,
    pub smtp_password: Option<Secret>,
    pub smtp_security: SmtpSecurity,
    /// The From header, e.g. `Souk <no-reply@shop.example>`.
    pub from: String,
    pub timeout_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_username: String::new(),
            smtp_password: None,
            smtp_security: SmtpSecurity::Starttls,
            from: "Souk <no-reply@localhost>".into(),
            timeout_secs: 30,
        }
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let p = self.argon2_parallelism;
        if p == 0 || p > 64 {
            return Err(key_error(
                "auth.argon2_parallelism",
                "must be between 1 and 64",
            ));
        }
        if self.argon2_memory_kib < 8 * p || self.argon2_memory_kib > 4 * 1024 * 1024 {
            return Err(key_error(
                "auth.argon2_memory_kib",
                "must be between 8 × auth.argon2_parallelism and 4194304 (4 GiB)",
            ));
        }
        if self.argon2_iterations == 0 || self.argon2_iterations > 100 {
            return Err(key_error(
                "auth.argon2_iterations",
                "must be between 1 and 100",
            ));
        }
        if self.max_concurrent_hashes == 0 {
            return Err(key_error(
                "auth.max_concurrent_hashes",
                "must be at least 1",
            ));
        }
        if !(60..=86400).contains(&self.access_token_ttl_secs) {
            return Err(key_error(
                "auth.access_token_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs
            || self.refresh_token_ttl_secs > 365 * 86400
        {
            return Err(key_error(
                "auth.refresh_token_ttl_secs",
                "must be at least auth.access_token_ttl_secs and at most a year",
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(key_error("auth.issuer", "must not be empty"));
        }
        if self.audience.trim().is_empty() {
            return Err(key_error("auth.audience", "must not be empty"));
        }
        if self.lockout_account_failures == 0 {
            return Err(key_error(
                "auth.lockout_account_failures",
                "must be at least 1",
            ));
        }
        if self.lockout_address_failures < self.lockout_account_failures {
            return Err(key_error(
                "auth.lockout_address_failures",
                "must be at least auth.lockout_account_failures",
            ));
        }
        if self.lockout_base_secs == 0 || self.lockout_max_secs < self.lockout_base_secs {
            return Err(key_error(
                "auth.lockout_base_secs",
                "must be at least 1 and at most auth.lockout_max_secs",
            ));
        }
        if self.lockout_forget_secs < self.lockout_max_secs {
            return Err(key_error(
                "auth.lockout_forget_secs",
                "must be at least auth.lockout_max_secs",
            ));
        }
        for (key, v) in [
            ("auth.reset_token_ttl_secs", self.reset_token_ttl_secs),
            ("auth.verify_token_ttl_secs", self.verify_token_ttl_secs),
            ("auth.mfa_token_ttl_secs", self.mfa_token_ttl_secs),
        ] {
            if !(60..=30 * 86400).contains(&v) {
                return Err(key_error(key, "must be between 60 and 2592000"));
            }
        }
        if !(1..=86400).contains(&self.sweep_interval_secs) {
            return Err(key_error(
                "auth.sweep_interval_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=60).contains(&self.last_seen_flush_secs) {
            return Err(key_error(
                "auth.last_seen_flush_secs",
                "must be between 1 and 60",
            ));
        }
        Ok(())
    }
}

/// Products, images and demo data (`[catalog]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// The one currency prices are in (ISO 4217, e.g. "EUR"); lists sort by price across it.
    pub currency: String,
    /// Largest image upload accepted (bytes); larger ones get 413. At most http.body_limit_bytes.
    pub image_max_bytes: usize,
    /// Largest width or height of an uploaded image, in pixels.
    pub image_max_dimension: u32,
    /// Most images per product.
    pub max_images: usize,
    /// Most variants per product.
    pub max_variants: usize,
    /// Most index entries one list request looks at before it answers with what it found
    /// and a cursor to continue (keeps rare filters from scanning the whole catalog).
    pub list_scan_budget: usize,
    /// `souk demo` defaults: product count, random seed, distinct generated images.
    pub demo_products: usize,
    pub demo_seed: u64,
    pub demo_images: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            currency: "EUR".into(),
            image_max_bytes: 2_000_000,
            image_max_dimension: 8000,
            max_images: 20,
            max_variants: 100,
            list_scan_budget: 5000,
            demo_products: 3000,
            demo_seed: 42,
            demo_images: 52,
        }
    }
}

impl CatalogConfig {
    fn validate(&self, body_limit: usize) -> Result<(), ConfigError> {
        let c = self.currency.as_bytes();
        if c.len() != 3 || !c.iter().all(u8::is_ascii_uppercase) {
            return Err(key_error(
                "catalog.currency",
                "must be a three-letter upper-case code such as EUR",
            ));
        }
        if self.image_max_bytes < 1024 || self.image_max_bytes > body_limit {
            return Err(key_error(
                "catalog.image_max_bytes",
                "must be between 1024 and http.body_limit_bytes (raise that too)",
            ));
        }
        if !(64..=20_000).contains(&self.image_max_dimension) {
            return Err(key_error(
                "catalog.image_max_dimension",
                "must be between 64 and 20000",
            ));
        }
        if !(1..=100).contains(&self.max_images) {
            return Err(key_error("catalog.max_images", "must be between 1 and 100"));
        }
        if !(1..=1000).contains(&self.max_variants) {
            return Err(key_error(
                "catalog.max_variants",
                "must be between 1 and 1000",
            ));
        }
        if self.list_scan_budget < 100 {
            return Err(key_error(
                "catalog.list_scan_budget",
                "must be at least 100",
            ));
        }
        if !(1..=1024).contains(&self.demo_images) {
            return Err(key_error(
                "catalog.demo_images",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

impl MailConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.from.contains('@') {
            return Err(key_error("mail.from", "must contain an email address"));
        }
        if self.smtp_host.is_empty() {
            return Ok(());
        }
        if self.smtp_port == 0 {
            return Err(key_error("mail.smtp_port", "must not be 0"));
        }
        if self.smtp_password.is_some() && self.smtp_username.is_empty() {
            return Err(key_error(
                "mail.smtp_username",
                "required when mail.smtp_password is set",
            ));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 600 {
            return Err(key_error("mail.timeout_secs", "must be between 1 and 600"));
        }
        Ok(())
    }
}

/// Payments, wallets and fraud rules (`[payments]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Currency of wallets and top-ups (ISO 4217).
    pub currency: String,
    /// The built-in test card gateway: for development and demos only, never real money.
    pub test_gateway: bool,
    /// Smallest and largest wallet top-up, in minor units.
    pub topup_min: i64,
    pub topup_max: i64,
    /// The hosted (redirect) gateway: the provider's payment page ("" = off) and the
    /// shared secret its callbacks are signed with (HMAC-SHA256, 32+ characters).
    pub hosted_url: String,
    pub hosted_secret: Option<Secret>,
    /// Callbacks older or newer than this are refused as replays.
    pub hosted_tolerance_secs: u64,
    /// Each gateway call gives up after this long.
    pub gateway_timeout_secs: u64,
    /// Circuit breaker: consecutive failures that open it, how long it stays open, and how
    /// many trial calls it lets through half-open.
    pub breaker_failures: u32,
    pub breaker_open_secs: u64,
    pub breaker_half_open_tries: u32,
    pub fraud: FraudConfig,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            currency: "EUR".into(),
            test_gateway: false,
            topup_min: 100,
            topup_max: 1_000_000,
            hosted_url: String::new(),
            hosted_secret: None,
            hosted_tolerance_secs: 300,
            gateway_timeout_secs: 20,
            breaker_failures: 5,
            breaker_open_secs: 60,
            breaker_half_open_tries: 3,
            fraud: FraudConfig::default(),
        }
    }
}

/// Fraud rules (`[payments.fraud]`): each rule that fires adds its weight to a score;
/// the score decides allow, review (held for an admin) or block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    pub enabled: bool,
    pub review_score: u32,
    pub block_score: u32,
    /// Payments per hour / per day by one user, one client address or one card.
    pub max_per_hour: u32,
    pub max_per_day: u32,
    /// Minor units per day by one user, address or card.
    pub max_amount_per_day: i64,
    /// A payment above this many times the user's largest successful one.
    pub history_multiple: i64,
    /// Accounts younger than this whose first payment exceeds `new_account_amount`.
    pub new_account_hours: u64,
    pub new_account_amount: i64,
    /// Declined payments per day before more attempts look suspicious.
    pub max_declines_per_day: u32,
    /// Distinct cards one account may use per day.
    pub max_cards_per_day: u32,
}

impl Default for FraudConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            review_score: 50,
            block_score: 80,
            max_per_hour: 20,
            max_per_day: 100,
            max_amount_per_day: 1_000_000,
            history_multiple: 20,
            new_account_hours: 24,
            new_account_amount: 100_000,
            max_declines_per_day: 5,
            max_cards_per_day: 3,
        }
    }
}

impl PaymentsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let c = self.currency.as_bytes();
        if c.len() != 3 || !c.iter().all(u8::is_ascii_uppercase) {
            return Err(key_error(
                "payments.currency",
                "must be a three-letter upper-case code such as EUR",
            ));
        }
        if self.topup_min < 1 || self.topup_max < self.topup_min {
            return Err(key_error(
                "payments.topup_min",
                "must be at least 1 and at most payments.topup_max",
            ));
        }
        if !self.hosted_url.is_empty() {
            if !(self.hosted_url.starts_with("https://") || self.hosted_url.starts_with("http://"))
            {
                return Err(key_error(
                    "payments.hosted_url",
                    "must start with https:// or http://",
                ));
            }
            match &self.hosted_secret {
                Some(s) if s.expose().len() >= 32 => {}
                _ => {
                    return Err(key_error(
                        "payments.hosted_secret",
                        "required (32+ characters) when payments.hosted_url is set",
                    ));
                }
            }
        }
        if !(10..=3600).contains(&self.hosted_tolerance_secs) {
            return Err(key_error(
                "payments.hosted_tolerance_secs",
                "must be between 10 and 3600",
            ));
        }
        if !(1..=120).contains(&self.gateway_timeout_secs) {
            return Err(key_error(
                "payments.gateway_timeout_secs",
                "must be between 1 and 120",
            ));
        }
        if self.breaker_failures == 0
            || self.breaker_half_open_tries == 0
            || self.breaker_open_secs == 0
        {
            return Err(key_error(
                "payments.breaker_failures",
                "breaker numbers must all be at least 1",
            ));
        }
        let f = &self.fraud;
        if f.review_score == 0 || f.block_score < f.review_score {
            return Err(key_error(
                "payments.fraud.block_score",
                "review_score must be at least 1 and block_score at least review_score",
            ));
        }
        Ok(())
    }
}

/// Product search (`[search]`): the tantivy index under `data/search` and the limits of
/// `/api/v1/search`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Memory the index writer may buffer before it flushes a segment (MiB).
    pub writer_memory_mib: usize,
    /// Signed-in shoppers' results lean toward categories and brands they showed
    /// interest in (order only, never which products match).
    pub personalize: bool,
    /// Longest accepted `q` (characters).
    pub max_query_len: usize,
    /// Largest accepted `limit`, and the default one.
    pub max_limit: usize,
    pub default_limit: usize,
    /// Facets computed when a request names none.
    pub default_facets: Vec<String>,
    /// Price facet bucket bounds, minor units, ascending.
    pub price_buckets: Vec<i64>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            writer_memory_mib: 64,
            personalize: true,
            max_query_len: 256,
            max_limit: 100,
            default_limit: 20,
            default_facets: vec!["category".into(), "brand".into(), "price".into()],
            price_buckets: vec![1000, 2500, 5000, 10000, 25000, 50000],
        }
    }
}

impl SearchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(15..=4096).contains(&self.writer_memory_mib) {
            return Err(key_error(
                "search.writer_memory_mib",
                "must be between 15 and 4096",
            ));
        }
        if !(1..=4096).contains(&self.max_query_len) {
            return Err(key_error(
                "search.max_query_len",
                "must be between 1 and 4096",
            ));
        }
        if !(1..=1000).contains(&self.max_limit) {
            return Err(key_error("search.max_limit", "must be between 1 and 1000"));
        }
        if self.default_limit == 0 || self.default_limit > self.max_limit {
            return Err(key_error(
                "search.default_limit",
                "must be between 1 and search.max_limit",
            ));
        }
        if let Some(f) = self
            .default_facets
            .iter()
            .find(|f| !crate::services::search::FACETS.contains(&f.as_str()))
        {
            return Err(key_error(
                "search.default_facets",
                format!("unknown facet `{f}`"),
            ));
        }
        if self.price_buckets.windows(2).any(|w| w[0] >= w[1])
            || self.price_buckets.iter().any(|b| *b <= 0)
        {
            return Err(key_error(
                "search.price_buckets",
                "must be positive and strictly ascending",
            ));
        }
        Ok(())
    }
}

/// The server-rendered storefront (`[storefront]`): branding a shop changes without a
/// rebuild, and the switch that reads templates from disk while a theme is being made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorefrontConfig {
    /// The shop's name: page titles, the header, OpenGraph.
    pub name: String,
    /// A logo image URL (absolute https:// or a path on this server); "" shows the name.
    pub logo_url: String,
    /// Header, buttons and links (`#rrggbb`); white text must read on it (AA).
    pub primary_color: String,
    /// Prices and highlights (`#rrggbb`).
    pub accent_color: String,
    /// A line of text in the footer ("" = none).
    pub footer_text: String,
    /// Read templates from `templates_dir` on every request instead of the copies
    /// embedded in the binary (theme work only: slower, and a typo shows as a 500).
    pub reload_templates: bool,
    pub templates_dir: PathBuf,
}

impl Default for StorefrontConfig {
    fn default() -> Self {
        Self {
            name: "Souk".into(),
            logo_url: String::new(),
            primary_color: "#1d4ed8".into(),
            accent_color: "#b45309".into(),
            footer_text: String::new(),
            reload_templates: false,
            templates_dir: PathBuf::from("templates"),
        }
    }
}

impl StorefrontConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let n = self.name.trim().chars().count();
        if n == 0 || n > 80 {
            return Err(key_error("storefront.name", "must be 1 to 80 characters"));
        }
        let logo = &self.logo_url;
        if !(logo.is_empty()
            || logo.starts_with("https://")
            || (logo.starts_with('/') && !logo.starts_with("//")))
            || logo.contains(['"', '<', '>', ' '])
        {
            return Err(key_error(
                "storefront.logo_url",
                "must be empty, an https:// URL or a path starting with /",
            ));
        }
        for (key, v) in [
            ("storefront.primary_color", &self.primary_color),
            ("storefront.accent_color", &self.accent_color),
        ] {
            let hex = v.strip_prefix('#').unwrap_or("");
            if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(key_error(key, "must be a colour like #1d4ed8"));
            }
        }
        if self.footer_text.chars().count() > 500 {
            return Err(key_error(
                "storefront.footer_text",
                "must be at most 500 characters",
            ));
        }
        Ok(())
    }
}

/// Carts, orders and the checkout saga (`[orders]`). Money amounts are minor units of
/// `catalog.currency`; rates are basis points (100 = 1 %).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// Most units of one variant in one cart line.
    pub max_line_quantity: i64,
    /// Most lines in one cart.
    pub max_cart_lines: usize,
    /// An order not paid this long after checkout is cancelled and its stock released.
    pub payment_timeout_secs: u64,
    /// How long after delivery a buyer may ask to return goods; the order completes
    /// (and vendors' money becomes available) once it has passed.
    pub return_window_days: u64,
    /// Flat shipping charged per vendor in an order, unless that vendor's part reaches
    /// `free_shipping_threshold` (0 = never free).
    pub shipping_flat: i64,
    pub free_shipping_threshold: i64,
    /// Whether catalog prices already include tax (true: tax is shown as the part of the
    /// price it is) or tax is added on top (false).
    pub prices_include_tax: bool,
    /// Tax rate for shipping countries not listed in `tax_rates`.
    pub default_tax_rate_bp: u32,
    /// Tax rate per shipping country (ISO 3166 alpha-2 code).
    pub tax_rates: std::collections::BTreeMap<String, u32>,
    /// The platform's commission on each vendor's goods, frozen into an order at checkout.
    pub commission_rate_bp: u32,
    /// How often the timer worker looks for timers that fell due.
    pub timer_interval_secs: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            max_line_quantity: 99,
            max_cart_lines: 100,
            payment_timeout_secs: 15 * 60,
            return_window_days: 14,
            shipping_flat: 490,
            free_shipping_threshold: 5000,
            prices_include_tax: true,
            default_tax_rate_bp: 2000,
            tax_rates: std::collections::BTreeMap::new(),
            commission_rate_bp: 1000,
            timer_interval_secs: 5,
        }
    }
}

impl OrdersConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=10_000).contains(&self.max_line_quantity) {
            return Err(key_error(
                "orders.max_line_quantity",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=1000).contains(&self.max_cart_lines) {
            return Err(key_error(
                "orders.max_cart_lines",
                "must be between 1 and 1000",
            ));
        }
        if !(60..=7 * 86400).contains(&self.payment_timeout_secs) {
            return Err(key_error(
                "orders.payment_timeout_secs",
                "must be between 60 and 604800",
            ));
        }
        if self.return_window_days > 365 {
            return Err(key_error(
                "orders.return_window_days",
                "must be at most 365",
            ));
        }
        if self.shipping_flat < 0 || self.free_shipping_threshold < 0 {
            return Err(key_error(
                "orders.shipping_flat",
                "shipping amounts must not be negative",
            ));
        }
        if self.default_tax_rate_bp > 10_000 {
            return Err(key_error(
                "orders.default_tax_rate_bp",
                "must be at most 10000",
            ));
        }
        for (country, rate) in &self.tax_rates {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(key_error(
                    "orders.tax_rates",
                    format!("{country:?} is not a two-letter upper-case country code"),
                ));
            }
            if *rate > 10_000 {
                return Err(key_error(
                    "orders.tax_rates",
                    format!("the rate of {country} must be at most 10000"),
                ));
            }
        }
        if self.commission_rate_bp > 10_000 {
            return Err(key_error(
                "orders.commission_rate_bp",
                "must be at most 10000",
            ));
        }
        if !(1..=3600).contains(&self.timer_interval_secs) {
            return Err(key_error(
                "orders.timer_interval_secs",
                "must be between 1 and 3600",
            ));
        }
        Ok(())
    }
}

/// A string that never shows in logs or debug output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            auth: AuthConfig::default(),
            mail: MailConfig::default(),
            catalog: CatalogConfig::default(),
            payments: PaymentsConfig::default(),
            orders: OrdersConfig::default(),
            search: SearchConfig::default(),
            storefront: StorefrontConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            redirect_listen: None,
            public_url: String::new(),
            body_limit_bytes: 2 * 1024 * 1024,
            shutdown_grace_secs: 20,
            timeouts: Timeouts::default(),
            rate_limit: RateLimit::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            default_secs: 30,
            search_secs: 5,
            payment_secs: 60,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 100,
            burst: 200,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::SelfSigned,
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            cert_path: None,
            key_path: None,
            min_version: TlsVersion::V1_3,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            partitions: 10,
            retention_hours: 7 * 24,
            retention_bytes: 1 << 30,
            retention_interval_secs: 300,
            memtable_mib: 8,
            cache_mib: 16,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            group_commit_max: 64,
            cache_mib: 64,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// Why a configuration was refused; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

fn key_error(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Layers defaults, the file (if any), and the environment given as `(name, value)` pairs.
    /// A missing file is fine only when `path` was not asked for explicitly.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: p.to_path_buf(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("SOUK_") else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            set_path(&mut table, &keys, parse_env_value(&value))
                .map_err(|m| key_error(&format!("{name} ({})", keys.join(".")), m))?;
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                key_error(&key, e.into_inner().to_string())
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Impossible values are refused here, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.http.timeouts;
        for (key, v) in [
            ("http.timeouts.default_secs", t.default_secs),
            ("http.timeouts.search_secs", t.search_secs),
            ("http.timeouts.payment_secs", t.payment_secs),
        ] {
            if v == 0 || v > 3600 {
                return Err(key_error(
                    key,
                    format!("must be between 1 and 3600, got {v}"),
                ));
            }
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(key_error("http.body_limit_bytes", "must be at least 1024"));
        }
        if self.http.rate_limit.enabled
            && (self.http.rate_limit.per_second == 0 || self.http.rate_limit.burst == 0)
        {
            return Err(key_error(
                "http.rate_limit",
                "per_second and burst must be above 0 (set enabled = false to turn it off)",
            ));
        }
        let url = &self.http.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(key_error(
                "http.public_url",
                "must start with https:// or http://",
            ));
        }
        // Port 0 asks for any free port, so two listeners on port 0 never collide.
        if self.http.redirect_listen == Some(self.http.listen) && self.http.listen.port() != 0 {
            return Err(key_error(
                "http.redirect_listen",
                "must differ from http.listen",
            ));
        }
        if self.log.partitions == 0 || self.log.partitions > 1024 {
            return Err(key_error("log.partitions", "must be between 1 and 1024"));
        }
        if self.log.retention_hours == 0 {
            return Err(key_error("log.retention_hours", "must be at least 1"));
        }
        if self.log.retention_bytes < 1024 * 1024 {
            return Err(key_error("log.retention_bytes", "must be at least 1 MiB"));
        }
        if self.log.retention_interval_secs == 0 {
            return Err(key_error(
                "log.retention_interval_secs",
                "must be at least 1",
            ));
        }
        if !(1..=1024).contains(&self.log.memtable_mib) {
            return Err(key_error("log.memtable_mib", "must be 1 to 1024"));
        }
        if self.log.cache_mib == 0 {
            return Err(key_error("log.cache_mib", "must be at least 1"));
        }
        if self.store.group_commit_max == 0 {
            return Err(key_error("store.group_commit_max", "must be at least 1"));
        }
        match self.tls.mode {
            TlsMode::Files => {
                if self.tls.cert_path.is_none() {
                    return Err(key_error(
                        "tls.cert_path",
                        "required when tls.mode = \"files\"",
                    ));
                }
                if self.tls.key_path.is_none() {
                    return Err(key_error(
                        "tls.key_path",
                        "required when tls.mode = \"files\"",
                    ));
                }
            }
            TlsMode::SelfSigned if self.tls.hosts.is_empty() => {
                return Err(key_error(
                    "tls.hosts",
                    "needs at least one host name for the certificate",
                ));
            }
            _ => {}
        }
        if let Some(token) = &self.metrics.token
            && token.expose().len() < 16
        {
            return Err(key_error("metrics.token", "must be at least 16 characters"));
        }
        self.auth.validate()?;
        self.mail.validate()?;
        self.catalog.validate(self.http.body_limit_bytes)?;
        self.payments.validate()?;
        self.orders.validate()?;
        self.search.validate()?;
        self.storefront.validate()?;
        if !matches!(self.telemetry.format.as_str(), "json" | "pretty") {
            return Err(key_error(
                "telemetry.format",
                "must be \"json\" or \"pretty\"",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.telemetry.level).is_err() {
            return Err(key_error(
                "telemetry.level",
                "is not a valid tracing filter",
            ));
        }
        Ok(())
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.mode != TlsMode::OffBehindProxy
    }

    /// The base URL links and redirects point at.
    pub fn public_url(&self) -> String {
        if !self.http.public_url.is_empty() {
            return self.http.public_url.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls_enabled() { "https" } else { "http" };
        format!("{scheme}://{}", self.http.listen)
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }
}

/// An environment value is read as a TOML value when it parses as one (numbers, booleans,
/// arrays, quoted strings), else as a bare string, so `SOUK_HTTP__LISTEN=0.0.0.0:443` works.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    match keys {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(
            Some(&p),
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let c = load_str("", &[]).unwrap();
        assert_eq!(c.log.partitions, 10);
        assert_eq!(c.http.timeouts.search_secs, 5);
        assert_eq!(c.tls.min_version, TlsVersion::V1_3);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_str("[http]\nlisten_addr = \"1.2.3.4:1\"\n", &[]).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("http") && m.contains("listen_addr"), "{m}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = load_str("[log]\npartitions = \"ten\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("log.partitions"), "{e}");
    }

    #[test]
    fn impossible_value_is_named() {
        let e = load_str("[log]\npartitions = 0\n", &[]).unwrap_err();
        assert!(e.to_string().contains("log.partitions"), "{e}");
        let e = load_str("[tls]\nmode = \"files\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("tls.cert_path"), "{e}");
    }

    #[test]
    fn env_overrides_file() {
        let c = load_str(
            "[http]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("SOUK_HTTP__LISTEN", "0.0.0.0:9443"),
                ("SOUK_LOG__PARTITIONS", "3"),
                ("SOUK_TLS__HOSTS", "[\"shop.example\"]"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.listen.to_string(), "0.0.0.0:9443");
        assert_eq!(c.log.partitions, 3);
        assert_eq!(c.tls.hosts, vec!["shop.example".to_string()]);
    }

    #[test]
    fn env_with_bad_value_is_named() {
        let e = load_str("", &[("SOUK_HTTP__TIMEOUTS__DEFAULT_SECS", "soon")]).unwrap_err();
        assert!(e.to_string().contains("http.timeouts.default_secs"), "{e}");
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}

#[cfg(test)]
mod shipped_file {
    use super::*;

    /// The documented config.toml must load and say what the built-in defaults say.
    #[test]
    fn shipped_config_matches_defaults() {
        let text = include_str!("../config.toml");
        let file: Config = toml::from_str(text).unwrap();
        let dflt = Config::default();
        assert_eq!(format!("{file:?}"), format!("{dflt:?}"));
    }
}
