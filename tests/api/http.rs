//! HTTPS, errors, request ids, rate limits, metrics and graceful shutdown, through a real
//! server over TLS. Test-only routes are added with `router_with`; production has none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{TestApp, client_trusting, spawn_app, spawn_app_in, spawn_app_with};
use axum::Router;
use axum::routing::{get, post};
use reqwest::{Method, StatusCode, header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use serde_json::{Value, json};
use souk::app::AppState;
use souk::config::{Secret, TlsMode, TlsVersion};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

// ---- TLS ----------------------------------------------------------------------------

/// A raw TLS client that trusts only `trusted` and offers only `versions`.
async fn tls_connect(
    app: &TestApp,
    trusted: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(trusted) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await
}

/// Sends a plain HTTP/1.1 GET over an established stream and returns the raw answer.
async fn raw_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    path: &str,
) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // The server may close without close_notify; what was read is what counts.
    let _ = stream.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn health_over_tls13_for_a_client_trusting_only_the_generated_cert() {
    let app = spawn_app().await;
    let mut tls = tls_connect(&app, &app.cert_pem, &[&rustls::version::TLS13])
        .await
        .expect("TLS 1.3 handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let answer = raw_get(&mut tls, "/health").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"status":"ok"}"#), "{answer}");

    // A client that trusts nothing (no system roots either) refuses the server.
    let stranger = client_trusting(&[], |b| b);
    assert!(stranger.get(app.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn tls12_client_is_refused_by_default() {
    let app = spawn_app().await;
    let refused = tls_connect(&app, &app.cert_pem, &[&rustls::version::TLS12]).await;
    assert!(refused.is_err(), "a TLS 1.2-only client must be refused");
    // The server still serves everyone else.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn tls12_client_is_accepted_when_configured() {
    let app = spawn_app_with(|c| c.tls.min_version = TlsVersion::V1_2).await;
    let mut tls = tls_connect(&app, &app.cert_pem, &[&rustls::version::TLS12])
        .await
        .expect("TLS 1.2 handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert!(
        raw_get(&mut tls, "/health")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn http2_and_http1_are_negotiated_by_alpn() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let h1 = client_trusting(&app.cert_pem, |b| b.http1_only());
    let res = h1.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
}

#[tokio::test]
async fn self_signed_cert_is_kept_private_and_reused_across_restarts() {
    let app = spawn_app().await;
    let first = app.server().cert_fingerprint().unwrap();
    let keys = app.dir.path().join("keys");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&keys.join("tls-key.pem")), 0o600);
    assert_eq!(mode(&keys), 0o700);
    let pem = app.cert_pem.clone();

    let dir = app.stop().await;
    let again = spawn_app_in(dir, |_| {}, Router::new()).await;
    assert_eq!(again.server().cert_fingerprint().unwrap(), first);
    assert_eq!(again.cert_pem, pem);
    // The fingerprint is the SHA-256 of the certificate the client actually receives.
    let tls = tls_connect(&again, &pem, &[&rustls::version::TLS13])
        .await
        .unwrap();
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(souk::http::tls::fingerprint(&served), first);
}

/// Writes a fresh self-signed pair for 127.0.0.1 into `dir`; returns its fingerprint.
fn write_pair(dir: &std::path::Path) -> String {
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    souk::http::tls::fingerprint(pair.cert.der())
}

async fn served_fingerprint(app: &TestApp, trusted: &[u8]) -> String {
    let tls = tls_connect(app, trusted, &[&rustls::version::TLS13])
        .await
        .unwrap();
    souk::http::tls::fingerprint(&tls.get_ref().1.peer_certificates().unwrap()[0])
}

#[tokio::test]
async fn configured_pem_pair_is_served_and_reloaded_and_a_bad_one_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let first = write_pair(certs.path());
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let app = spawn_app_with(|c| {
        c.tls.mode = TlsMode::Files;
        c.tls.cert_path = Some(cert.clone());
        c.tls.key_path = Some(key.clone());
    })
    .await;
    let first_pem = std::fs::read(&cert).unwrap();
    assert_eq!(served_fingerprint(&app, &first_pem).await, first);
    // Nothing was generated: the configured pair is used as is.
    assert!(!app.dir.path().join("keys/tls-cert.pem").exists());

    let second = write_pair(certs.path());
    app.server().reload_tls().unwrap();
    let second_pem = std::fs::read(&cert).unwrap();
    assert_eq!(served_fingerprint(&app, &second_pem).await, second);
    assert_eq!(app.server().cert_fingerprint().unwrap(), second);

    // A broken key: reload fails and the server keeps serving the previous pair.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(app.server().reload_tls().is_err());
    assert_eq!(served_fingerprint(&app, &second_pem).await, second);
}

#[tokio::test]
async fn redirect_listener_answers_308_to_https() {
    let app = spawn_app_with(|c| c.http.redirect_listen = Some(([127, 0, 0, 1], 0).into())).await;
    let plain = app.server().redirect_addr().unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(format!("http://{plain}/api/v1/things?page=2&q=a%20b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        res.headers()[header::LOCATION],
        format!(
            "https://127.0.0.1:{}/api/v1/things?page=2&q=a%20b",
            app.addr.port()
        )
        .as_str()
    );
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    let h = res.headers();
    assert!(
        h[header::STRICT_TRANSPORT_SECURITY]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        h[header::REFERRER_POLICY],
        "strict-origin-when-cross-origin"
    );
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
}

// ---- errors as problem+json -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Echo {
    name: String,
    qty: u32,
}

fn test_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/test/echo",
            post(|souk::http::Json(e): souk::http::Json<Echo>| async move {
                souk::http::Json(json!({ "name": e.name, "qty": e.qty }))
            }),
        )
        .route(
            "/test/items/{n}",
            get(|souk::http::Path(n): souk::http::Path<u32>| async move { n.to_string() }),
        )
        .route(
            "/test/list",
            get(
                |souk::http::Query(q): souk::http::Query<ListQuery>| async move {
                    q.limit.to_string()
                },
            ),
        )
        .route(
            "/test/panic",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "unreachable"
            }),
        )
        .route("/test/forever", get(std::future::pending::<()>))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: u32,
}

async fn spawn_with_test_routes(tweak: impl FnOnce(&mut souk::Config)) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), tweak, test_routes()).await
}

/// Checks the problem+json shape and that the body's request id is the header's.
async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    assert!(body["type"].as_str().unwrap().ends_with(code), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    body
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_problems() {
    let app = spawn_app().await;
    // Outside /api an unknown path is the storefront's HTML 404 page, still 404.
    let page = app.get("/no/such/thing").await;
    assert_eq!(page.status().as_u16(), 404);
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    problem(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    let res = app.request(Method::POST, "/health").send().await.unwrap();
    assert_eq!(res.headers()[header::ALLOW], "GET,HEAD");
    problem(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn bad_json_bodies_are_problems_naming_what_is_wrong() {
    let app = spawn_with_test_routes(|_| {}).await;
    let limit = app.state.config.http.body_limit_bytes;

    let ok = app
        .post_json("/test/echo", &json!({"name": "a", "qty": 2}))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["qty"], 2);

    let malformed = app
        .request(Method::POST, "/test/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"name": "a", "qty": "#)
        .send()
        .await
        .unwrap();
    problem(malformed, 400, "bad_request").await;

    let wrong_type = app
        .request(Method::POST, "/test/echo")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"name": "a", "qty": 1}"#)
        .send()
        .await
        .unwrap();
    problem(wrong_type, 415, "unsupported_media_type").await;

    let unknown = app
        .post_json("/test/echo", &json!({"name": "a", "qty": 1, "price": 0}))
        .await;
    let body = problem(unknown, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "price");
    assert_eq!(body["errors"][0]["code"], "unknown_field");

    let missing = app.post_json("/test/echo", &json!({"qty": 1})).await;
    let body = problem(missing, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "name");
    assert_eq!(body["errors"][0]["code"], "missing");

    let negative = app
        .post_json("/test/echo", &json!({"name": "a", "qty": -1}))
        .await;
    let body = problem(negative, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "qty");

    let big = json!({"name": "x".repeat(limit + 1), "qty": 1});
    problem(
        app.post_json("/test/echo", &big).await,
        413,
        "payload_too_large",
    )
    .await;
    // Streamed without a length (chunked), the limit still holds.
    let mut tls = tls_connect(&app, &app.cert_pem, &[&rustls::version::TLS13])
        .await
        .unwrap();
    let mut req = String::from(
        "POST /test/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    let chunk = " ".repeat(64 * 1024);
    for _ in 0..=limit / chunk.len() {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf).await;
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_problems() {
    let app = spawn_with_test_routes(|_| {}).await;
    assert_eq!(app.get("/test/items/7").await.text().await.unwrap(), "7");
    let body = problem(app.get("/test/items/seven").await, 400, "bad_request").await;
    assert_eq!(body["errors"][0]["field"], "n");

    assert_eq!(
        app.get("/test/list?limit=5").await.text().await.unwrap(),
        "5"
    );
    let body = problem(app.get("/test/list?limit=lots").await, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "limit");
    let body = problem(app.get("/test/list").await, 422, "validation").await;
    assert_eq!(body["errors"][0]["code"], "missing");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_lives_on() {
    let app = spawn_with_test_routes(|_| {}).await;
    let body = problem(app.get("/test/panic").await, 500, "internal").await;
    assert!(!body["detail"].as_str().unwrap().contains("boom"));
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_request_over_its_time_budget_is_abandoned_with_503() {
    let app = spawn_with_test_routes(|c| c.http.timeouts.default_secs = 1).await;
    let res = app.get("/test/forever").await;
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    problem(res, 503, "timeout").await;
}

#[tokio::test]
async fn request_ids_are_echoed_when_well_formed_and_replaced_otherwise() {
    let app = spawn_app().await;
    let res = app
        .request(Method::GET, "/health")
        .header("x-request-id", "client-abc.123_X")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-abc.123_X");

    let res = app
        .request(Method::GET, "/api/v1/nowhere")
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "has spaces and \"quotes\"");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    problem(res, 404, "not_found").await;

    let a = app.get("/health").await.headers()["x-request-id"].clone();
    let b = app.get("/health").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

// ---- rate limit, readiness, metrics ----------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.http.rate_limit.per_second = 1;
        c.http.rate_limit.burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let res = app.get("/health").await;
        statuses.push(res.status().as_u16());
        if res.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(res);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    let res = limited.expect("a request beyond the burst is refused");
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    problem(res, 429, "rate_limited").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = spawn_app_with(|c| {
        c.http.rate_limit.per_second = 1;
        c.http.rate_limit.burst = 1;
        c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = |client: &'static str| {
        app.request(Method::GET, "/health")
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .send()
    };
    assert_eq!(from("198.51.100.1").await.unwrap().status(), 200);
    assert_eq!(from("198.51.100.1").await.unwrap().status(), 429);
    assert_eq!(from("198.51.100.2").await.unwrap().status(), 200);
}

#[tokio::test]
async fn ready_when_the_store_answers() {
    let app = spawn_app().await;
    let res = app.get("/ready").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/definitely/missing").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    for needle in [
        r#"http_requests_total{method="GET",route="/health",status="200"}"#,
        r#"route="<unmatched>",status="404""#,
        "http_request_duration_seconds_bucket{",
        "http_requests_in_flight",
        "souk_store_size_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // Raw paths never become labels.
    assert!(!text.contains("/definitely/missing"));
}

#[tokio::test]
async fn metrics_token_is_required_when_configured() {
    let token = "metrics-token-0123456789";
    let app = spawn_app_with(|c| c.metrics.token = Some(Secret::new(token))).await;
    let res = app.get("/metrics").await;
    assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
    problem(res, 401, "unauthorized").await;
    let wrong = app
        .request(Method::GET, "/metrics")
        .bearer_auth("metrics-token-0123456780")
        .send()
        .await
        .unwrap();
    problem(wrong, 401, "unauthorized").await;
    let right = app
        .request(Method::GET, "/metrics")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("http_requests_total"));
}

#[tokio::test]
async fn metrics_listener_serves_metrics_only_there() {
    let app = spawn_app_with(|c| c.metrics.listen = Some(([127, 0, 0, 1], 0).into())).await;
    problem(app.get("/metrics").await, 404, "not_found").await;
    let addr = app.server().metrics_addr().unwrap();
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = plain
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    let res = plain
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = spawn_app().await;
    // Enough traffic that the metrics page is worth compressing.
    for _ in 0..5 {
        app.get("/health").await;
    }
    let res = app
        .request(Method::GET, "/metrics")
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
}

// ---- graceful shutdown -----------------------------------------------------------------

#[tokio::test]
async fn in_flight_request_completes_after_shutdown_and_new_connections_are_refused() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let slow = Router::new().route(
        "/test/slow",
        get(move || {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.notify_one();
                r.notified().await;
                "finished"
            }
        }),
    );
    let app = spawn_app_in(tempfile::tempdir().unwrap(), |_| {}, slow).await;
    let client = app.client.clone();
    let url = app.url("/test/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    started.notified().await;

    app.server().begin_shutdown();
    // The listener closes promptly; poll until a fresh TCP connection is refused.
    let mut refused = false;
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(app.addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    assert!(
        refused,
        "new connections must be refused once shutdown starts"
    );

    release.notify_one();
    let res = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "finished");
    let TestApp { server, state, .. } = app;
    server.unwrap().stopped().await.unwrap();
    state.store.close();
}
