//! `spawn_app()`: a real Souk server in this process on a fresh data dir, port 0 and its
//! own self-signed certificate, with a client that trusts only that certificate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use serde::Serialize;
use souk::app::{App, AppState};
use souk::config::{Config, TlsMode};
use souk::http::Server;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Once;

pub struct TestApp {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`
    pub base_url: String,
    /// Trusts only this server's certificate; HTTP/2 or HTTP/1.1 by ALPN.
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    /// The served certificate, PEM, for tests that build their own TLS clients.
    pub cert_pem: Vec<u8>,
    pub server: Option<Server>,
}

/// Installs ring as the process's rustls provider and, with `TEST_LOG=1`, a log subscriber.
pub fn init_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another test binary module may have installed it already; either way it is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .event_format(souk::logging::LineFormat { json: true })
                .with_env_filter("info")
                .with_test_writer()
                .try_init();
        }
    });
}

/// The light configuration tests run with: loopback, port 0, self-signed TLS, a rate
/// limit high enough never to trip by accident.
pub fn test_config(data_dir: &Path) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    c.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.http.shutdown_grace_secs = 10;
    c.http.rate_limit.per_second = 100_000;
    c.http.rate_limit.burst = 100_000;
    c.tls.mode = TlsMode::SelfSigned;
    c.tls.hosts = vec!["127.0.0.1".into(), "localhost".into()];
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_in(dir, tweak, Router::new()).await
}

/// Starts a server on `dir` (reused across restarts), with `extra` routes under the
/// production middleware.
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut Config),
    extra: Router<AppState>,
) -> TestApp {
    init_process();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    config.validate().expect("test config is valid");
    let app = App::open(config).expect("app opens");
    let state = app.state.clone();
    let router = souk::http::router_with(state.clone(), extra);
    let server = Server::start_with_router(state.clone(), router)
        .await
        .expect("server starts");
    let addr = server.local_addr();
    let cert_pem = server
        .cert_path()
        .map(|p| std::fs::read(p).expect("cert readable"))
        .unwrap_or_default();
    let client = client_trusting(&cert_pem, |b| b);
    TestApp {
        addr,
        base_url: server.url(),
        client,
        state,
        dir,
        cert_pem,
        server: Some(server),
    }
}

/// A reqwest client that trusts only `cert_pem` (nothing at all if empty), adjusted by `f`.
pub fn client_trusting(
    cert_pem: &[u8],
    f: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    init_process();
    let mut b = reqwest::Client::builder().no_proxy();
    if cert_pem.is_empty() {
        b = b.tls_certs_only(Vec::<reqwest::Certificate>::new());
    } else {
        let cert = reqwest::Certificate::from_pem(cert_pem).expect("cert parses");
        b = b.tls_certs_only([cert]);
    }
    f(b).build().expect("client builds")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &impl Serialize) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_json(&self, path: &str, body: &impl Serialize) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch_json(&self, path: &str, body: &impl Serialize) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A request builder for anything the shortcuts do not cover (headers, raw bodies).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Graceful shutdown, then the store closes; the data dir is handed back for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        // Telemetry's writer holds the log open: flushed and stopped before a restart.
        self.state
            .telemetry
            .shutdown_async()
            .await
            .expect("telemetry flushed");
        self.state.store.close();
        self.dir
    }
}
