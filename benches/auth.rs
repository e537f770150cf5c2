//! Authentication costs: verifying an access token without the verified-token cache
//! (signature and claims every time) and with it (a token seen before: its hash and time
//! window), then the whole per-request check with the session lookup (target over 50k/s on
//! one core); and at the default (OWASP) argon2 parameters, the password check alone and a
//! whole login (password, session and audit committed durably).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use souk::auth::{Role, SessionId, UserId, keys, tokens};
use souk::config::{AuthConfig, Config};
use std::time::Duration;

fn token_verification(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ring = keys::load_key_ring(dir.path(), now).unwrap();
    let claims = tokens::Claims {
        iss: "souk".into(),
        aud: "souk-api".into(),
        sub: UserId::new(),
        sid: SessionId::new(),
        role: Role::Customer,
        vid: None,
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: now.unix_timestamp() + 900,
    };
    let token = tokens::sign(&ring, &claims).unwrap();

    let mut group = c.benchmark_group("auth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("access_token_verify_no_cache", |b| {
        b.iter(|| tokens::verify(&ring, &token, "souk", "souk-api", now).unwrap())
    });
    group.bench_function("access_token_sign", |b| {
        b.iter(|| tokens::sign(&ring, &claims).unwrap())
    });

    // What the `Principal` extractor does per request: the token plus one redb read of
    // the session.
    let config = Config {
        data_dir: dir.path().join("data"),
        auth: souk::config::AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let app = souk::App::open(config).unwrap();
    let state = app.state.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let user = UserId::new();
    let session = souk::auth::session::Session {
        id: SessionId::new(),
        user_id: user,
        role: Role::Customer,
        vendor_id: None,
        api_key_id: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::days(7),
        refresh_hash: None,
        revoked_at: None,
        revoked_reason: None,
        user_agent: None,
        ip: None,
    };
    let s = session.clone();
    rt.block_on(
        state
            .store
            .write(move |tx| souk::auth::session::put(tx, &s)),
    )
    .unwrap();
    let (access, _) = state
        .auth
        .issue_access(user, session.id, Role::Customer, None, state.clock.now())
        .unwrap();
    // Through `AuthState`, as requests do: the first use verifies the signature, later
    // uses of the same token hit the verified-token cache.
    group.bench_function("access_token_verify_cached", |b| {
        b.iter(|| {
            state
                .auth
                .verify_access(&access, state.clock.now())
                .unwrap()
        })
    });
    group.bench_function("authenticate_bearer_with_session_check", |b| {
        b.iter(|| souk::auth::principal::authenticate(&state, &access).unwrap())
    });
    group.finish();
}

fn password_hashing(c: &mut Criterion) {
    let cfg = AuthConfig::default();
    let hasher = souk::auth::password::Hasher::new(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let phc = rt.block_on(hasher.hash("correct horse battery")).unwrap();
    let mut group = c.benchmark_group("auth_password");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("login_verify_owasp_defaults", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(hasher.verify("correct horse battery", Some(&phc)))
                    .unwrap()
            )
        })
    });
    group.finish();
}

/// A whole `POST /auth/login` below HTTP: throttle checks, argon2 at the OWASP defaults,
/// the session and its audit entry committed with an fsync, the token minted.
fn login_latency(c: &mut Criterion) {
    use souk::auth::ClientInfo;
    use souk::services::users::{RegisterInput, flows};
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let app = souk::App::open(config).unwrap();
    let state = app.state.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = ClientInfo::default();
    rt.block_on(souk::services::users::register(
        &state,
        RegisterInput {
            email: "bench@example.com".into(),
            password: "correct horse battery".into(),
            name: "Bench".into(),
        },
        &client,
    ))
    .unwrap();
    let mut group = c.benchmark_group("auth_login");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("login_owasp_defaults_end_to_end", |b| {
        b.iter(|| {
            let input = flows::LoginInput {
                email: "bench@example.com".into(),
                password: "correct horse battery".into(),
            };
            match rt.block_on(flows::login(&state, input, &client)).unwrap() {
                flows::LoginOutcome::Tokens(_) => {}
                flows::LoginOutcome::MfaRequired { .. } => panic!("no MFA here"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, token_verification, password_hashing, login_latency);
criterion_main!(benches);
