//! The application: stores, keys, clock and background workers, built once from a
//! validated `Config`. `main`, the integration tests and the benches all start here.

use crate::clock::Clock;
use crate::config::Config;
use crate::error::Result;
use crate::log::EventLog;
use crate::store::Store;
use std::sync::Arc;

/// What every handler and worker shares: one `Arc`, so a clone (several per request, by
/// the layers and extractors) is one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    /// The event log under `data/log` (domain events arrive only through the outbox
    /// relay; telemetry is appended by `telemetry`).
    pub log: EventLog,
    /// JWT keys, password hasher, lockout state.
    pub auth: Arc<crate::auth::AuthState>,
    /// Outgoing mail (SMTP or the file sink).
    pub mailer: Arc<crate::mail::Mailer>,
    /// Payment providers, field-encryption and audit keys, the order-payment hook.
    pub payments: Arc<crate::services::payments::PaymentsState>,
    /// The product search index (swapped whole by a rebuild) and its indexer's channel.
    pub search: Arc<crate::services::search::SearchState>,
    /// `Idempotency-Key` requests still running in this process.
    pub idempotency: Arc<crate::http::idempotency::InFlight>,
    /// Best-effort events (searches, views) queued for the log's `telemetry` topic.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The pages' templates, assets, translations and cookie key.
    pub web: Arc<crate::web::WebState>,
    /// The catalog's kept list answers.
    pub catalog: crate::services::catalog::CatalogState,
}

/// An opened marketplace: stores ready, workers not yet started.
pub struct App {
    pub state: AppState,
}

impl App {
    /// Opens every store under `config.data_dir`, creating what is missing.
    pub fn open(config: Config) -> Result<App> {
        Self::open_with_clock(config, Clock::default())
    }

    pub fn open_with_clock(config: Config, clock: Clock) -> Result<App> {
        let store = Store::open(
            &config.data_dir,
            config.store.cache_mib,
            config.store.group_commit_max,
        )?;
        let log = EventLog::open(&config.data_dir.join("log"), &config.log, clock.clone())?;
        let auth = Arc::new(crate::auth::AuthState::new(&config, clock.now())?);
        let mailer = Arc::new(crate::mail::Mailer::new(&config)?);
        let payments = Arc::new(crate::services::payments::PaymentsState::new(
            &config, &clock,
        )?);
        let search = crate::services::search::SearchState::open(&config)?;
        let web = crate::web::WebState::new(&config)?;
        let telemetry = crate::telemetry::Telemetry::start(log.clone(), clock.clone())?;
        Ok(App {
            state: AppState(Arc::new(Shared {
                config: Arc::new(config),
                store,
                clock,
                log,
                auth,
                mailer,
                payments,
                search,
                idempotency: Arc::default(),
                telemetry,
                web,
                catalog: Default::default(),
            })),
        })
    }

    /// Starts the background workers: the outbox relay and the log's retention sweep.
    pub fn start_workers(&self) -> Result<Workers> {
        let s = &self.state;
        Ok(Workers {
            telemetry: s.telemetry.clone(),
            relay: crate::log::relay::spawn(s.store.clone(), s.log.clone())?,
            users_sweep: crate::services::users::sweep::spawn(s.clone())?,
            retention: crate::log::retention::spawn(
                s.log.clone(),
                std::time::Duration::from_secs(s.config.log.retention_interval_secs),
            )?,
        })
    }
}

/// The running background workers. Stop them after draining requests and before
/// `store.close()` with [`Workers::shutdown`]; dropping them stops them too.
pub struct Workers {
    telemetry: Arc<crate::telemetry::Telemetry>,
    pub relay: crate::log::relay::RelayHandle,
    retention: crate::log::retention::RetentionHandle,
    /// Expired sessions, tokens and lockouts; batched last-seen writes.
    users_sweep: crate::services::users::sweep::SweepHandle,
}

impl Workers {
    /// Moves what is left in the outbox to the log (waiting at most `grace`), then stops
    /// every worker. An error means events stayed in the outbox; they move on next start.
    pub async fn shutdown(self, grace: std::time::Duration) -> Result<()> {
        // Its last act writes the noted last-seen times, so it stops before the store.
        self.users_sweep.stop().await;
        // Telemetry first, so the relay's last fsync covers it too.
        if let Err(e) = self.telemetry.shutdown_async().await {
            tracing::warn!(error = %e, "flushing telemetry");
        }
        let flushed = match tokio::time::timeout(grace, self.relay.flush()).await {
            Ok(r) => r,
            Err(_) => Err(crate::Error::Internal(format!(
                "the outbox relay did not drain within {grace:?}; the rest moves on next start"
            ))),
        };
        self.relay.stop();
        self.retention.stop();
        flushed
    }
}

/// `souk serve`: opens the stores, starts the workers and the listeners, prints where to
/// connect, and on SIGTERM/SIGINT drains requests, flushes the relay and closes the store.
pub async fn serve(config: Config) -> Result<()> {
    let app = App::open(config)?;
    let workers = app.start_workers()?;
    // Payment results, payment timeouts, completions and refund retries of orders.
    let order_timers = crate::services::orders::start(&app.state);
    // Search answers 503 until a missing index is rebuilt; nothing else waits for it.
    let search_indexer = crate::services::search::start(&app.state)?;
    let server = crate::http::server::Server::start(app.state.clone()).await?;
    // Scripts (and the crash test) read this line to learn the port when listening on :0.
    println!("souk: listening on {}", server.url());
    if let (Some(fp), Some(path)) = (server.cert_fingerprint(), server.cert_path()) {
        println!("souk: certificate {} SHA-256 {fp}", path.display());
    }
    if let Some(token) = crate::services::users::admin::setup_token_if_no_admin(&app.state).await? {
        let url = crate::services::users::admin::setup_url(&app.state, &token);
        println!("souk: no administrator yet; create one at {url} (single use)");
    }
    server
        .run_until(crate::http::server::shutdown_signal())
        .await?;
    drop(order_timers);
    search_indexer.stop();
    if let Err(e) = workers.shutdown(std::time::Duration::from_secs(10)).await {
        tracing::warn!(error = %e, "stopping the workers");
    }
    app.state.store.close();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The config file `souk init` writes when none exists: the documented defaults.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

/// Creates a data dir ready to serve: directories with tight permissions, the stores, and
/// a config file if none was found. Idempotent: running it twice changes nothing.
pub fn init(config: &Config) -> Result<String> {
    let mut report = Vec::new();
    let data = &config.data_dir;
    crate::auth::keys::ensure_private_dir(data)?;
    crate::auth::keys::ensure_private_dir(&config.keys_dir())?;
    let app = App::open(config.clone())?;
    app.state.store.close();
    report.push(format!("data dir ready: {}", data.display()));
    if let Some(tls) = crate::http::tls::Tls::prepare(config)? {
        report.push(format!(
            "certificate: {} (SHA-256 {})",
            tls.cert_path.display(),
            tls.fingerprint()
        ));
    }
    let cfg_path = data.join("config.toml");
    if !cfg_path.exists() && !std::path::Path::new("config.toml").exists() {
        let text = DEFAULT_CONFIG.replace(
            "data_dir = \"data\"",
            &format!("data_dir = {:?}", data.display().to_string()),
        );
        std::fs::write(&cfg_path, text).map_err(crate::Error::internal)?;
        report.push(format!("config written: {}", cfg_path.display()));
    }
    Ok(report.join("\n"))
}
