//! The listeners: HTTPS (or plain HTTP behind a proxy, by explicit choice), the optional
//! redirect-to-HTTPS listener and the optional metrics listener, all sharing one graceful
//! shutdown. It serves and drains; flushing the relay and closing the store come after
//! [`Server::shutdown`] returns, in the caller (see `shutdown`'s docs for the order).

use crate::app::AppState;
use crate::config::TlsMode;
use crate::error::{Error, Result};
use crate::http::tls::Tls;
use crate::http::{metrics, metrics_router, router};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    local_addr: SocketAddr,
    redirect_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    control: axum_server::Control,
    grace: Duration,
    tls: Option<Tls>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    sighup: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds every configured listener and starts serving the production router.
    pub async fn start(state: AppState) -> Result<Server> {
        let app = router(state.clone());
        Self::start_with_router(state, app).await
    }

    /// Same as [`Server::start`] with a router of the caller's (tests add routes to it
    /// through [`crate::http::router_with`]).
    pub async fn start_with_router(state: AppState, app: Router) -> Result<Server> {
        metrics::init();
        let config = state.config.clone();
        let tls = Tls::prepare(&config)?;
        let control = axum_server::Control::new();
        let mut tasks = Vec::new();

        let listener = bind("http.listen", config.http.listen)?;
        let local_addr = listener.local_addr().map_err(Error::internal)?;
        let handle = Handle::<SocketAddr>::with_control(control.clone());
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        let mut server = axum_server::from_tcp(listener)
            .map_err(|e| Error::Internal(format!("http.listen {local_addr}: {e}")))?
            .handle(handle);
        // Slow-loris guard: a client gets this long to send its request headers.
        server
            .http_builder()
            .http1()
            .header_read_timeout(Duration::from_secs(30));
        match &tls {
            Some(tls) => {
                let server = server.acceptor(RustlsAcceptor::new(tls.config.clone()));
                tasks.push(tokio::spawn(server.serve(make)));
                tracing::info!(
                    listen = %local_addr,
                    tls.cert = %tls.cert_path.display(),
                    tls.fingerprint_sha256 = %tls.fingerprint(),
                    "serving HTTPS"
                );
            }
            None => {
                let server = server.acceptor(DefaultAcceptor::new());
                tasks.push(tokio::spawn(server.serve(make)));
                tracing::warn!(
                    listen = %local_addr,
                    "serving plain HTTP (tls.mode = \"off_behind_proxy\"); a proxy must terminate TLS"
                );
            }
        }

        let redirect_addr = match config.http.redirect_listen {
            Some(addr) => {
                let https_port = local_addr.port();
                let public = (!config.http.public_url.is_empty()).then(|| config.public_url());
                let redirect = Router::new().fallback(move |req: Request| {
                    let public = public.clone();
                    async move { redirect_to_https(&req, public.as_deref(), https_port) }
                });
                Some(spawn_plain(
                    &mut tasks,
                    &control,
                    "http.redirect_listen",
                    addr,
                    redirect,
                )?)
            }
            None => None,
        };

        let metrics_addr = match config.metrics.listen {
            Some(addr) => {
                let app = metrics_router(state.clone());
                Some(spawn_plain(
                    &mut tasks,
                    &control,
                    "metrics.listen",
                    addr,
                    app,
                )?)
            }
            None => None,
        };

        let sighup = match (&tls, config.tls.mode) {
            (Some(tls), TlsMode::Files) => Some(spawn_reload_on_sighup(tls.clone())?),
            _ => None,
        };

        Ok(Server {
            local_addr,
            redirect_addr,
            metrics_addr,
            control,
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
            tls,
            tasks,
            sighup,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://addr` (or `http://` behind a proxy), with the address actually bound.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect_addr
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// SHA-256 fingerprint of the served certificate (`AB:CD:...`), when TLS is on.
    pub fn cert_fingerprint(&self) -> Option<String> {
        self.tls.as_ref().map(Tls::fingerprint)
    }

    /// Where the served certificate lives (for the CLI to print, or a client to trust).
    pub fn cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert_path.as_path())
    }

    /// Re-reads the configured PEM pair, as SIGHUP does. On error the old pair stays.
    pub fn reload_tls(&self) -> Result<()> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Err(Error::BadRequest("TLS is off; nothing to reload".into())),
        }
    }

    /// Stops accepting on every listener and lets in-flight requests finish, for at most
    /// `http.shutdown_grace_secs`. Returns at once; await [`Server::stopped`] for the end.
    pub fn begin_shutdown(&self) {
        self.control.graceful_shutdown(Some(self.grace));
    }

    /// Waits until every listener has stopped and every connection has closed.
    pub async fn stopped(mut self) -> Result<()> {
        if let Some(h) = self.sighup.take() {
            h.abort();
        }
        let mut first_error = None;
        for task in self.tasks.drain(..) {
            let outcome = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => Error::Internal(format!("listener failed: {e}")),
                Err(e) => Error::Internal(format!("listener task failed: {e}")),
            };
            first_error.get_or_insert(outcome);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Graceful shutdown, start to end. The caller then, in this order, flushes the
    /// relay (so every committed event is in the log) and closes the store:
    /// `server.shutdown().await?; relay.flush()...; store.close();`
    pub async fn shutdown(self) -> Result<()> {
        self.begin_shutdown();
        self.stopped().await
    }

    /// Serves until `signal` resolves (usually [`shutdown_signal`]), then shuts down.
    pub async fn run_until<F: Future<Output = ()>>(self, signal: F) -> Result<()> {
        signal.await;
        tracing::info!(
            grace_secs = self.grace.as_secs(),
            "shutting down: draining requests"
        );
        self.shutdown().await
    }
}

fn bind(key: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| Error::Internal(format!("{key} = {addr}: cannot listen: {e}")))
}

fn spawn_plain(
    tasks: &mut Vec<JoinHandle<std::io::Result<()>>>,
    control: &axum_server::Control,
    key: &str,
    addr: SocketAddr,
    app: Router,
) -> Result<SocketAddr> {
    let listener = bind(key, addr)?;
    let bound = listener.local_addr().map_err(Error::internal)?;
    let server = axum_server::from_tcp(listener)
        .map_err(|e| Error::Internal(format!("{key} = {addr}: {e}")))?
        .handle(Handle::with_control(control.clone()));
    tasks.push(tokio::spawn(
        server.serve(app.into_make_service_with_connect_info::<SocketAddr>()),
    ));
    tracing::info!(listen = %bound, key, "serving plain HTTP");
    Ok(bound)
}

/// 308 keeps the method and body, so a POST sent to http:// is not silently turned into
/// a GET. The host comes from the request (validated) unless `http.public_url` is set.
fn redirect_to_https(req: &Request, public_url: Option<&str>, https_port: u16) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let base = match public_url {
        Some(base) => base.to_string(),
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().host());
            let Some(host) = host.and_then(host_without_port) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            if https_port == 443 {
                format!("https://{host}")
            } else {
                format!("https://{host}:{https_port}")
            }
        }
    };
    let target = format!("{base}{path_and_query}");
    match (target.parse::<Uri>(), HeaderValue::from_str(&target)) {
        (Ok(_), Ok(location)) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `shop.example:80` → `shop.example`; `[::1]:80` → `[::1]`. Anything with characters a
/// host name cannot have is refused, so the Location header cannot be steered elsewhere.
fn host_without_port(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(name)
}

fn spawn_reload_on_sighup(tls: Tls) -> Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())
        .map_err(|e| Error::Internal(format!("cannot listen for SIGHUP: {e}")))?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    tls.cert = %tls.cert_path.display(),
                    tls.fingerprint_sha256 = %tls.fingerprint(),
                    "reloaded the TLS certificate"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "SIGHUP: the new TLS certificate or key is unusable; still serving the old one"
                ),
            }
        }
    }))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): what `souk serve` waits for before draining.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!("SIGTERM received"),
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => tracing::info!("SIGINT received"),
            Err(e) => tracing::error!(error = %e, "cannot listen for SIGINT"),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redirect_hosts_are_validated() {
        assert_eq!(host_without_port("shop.example:80"), Some("shop.example"));
        assert_eq!(host_without_port("shop.example"), Some("shop.example"));
        assert_eq!(host_without_port("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_without_port("127.0.0.1:80"), Some("127.0.0.1"));
        assert_eq!(host_without_port("evil.example/x"), None);
        assert_eq!(host_without_port("a@b"), None);
        assert_eq!(host_without_port(""), None);
    }
}
