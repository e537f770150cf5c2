//! Session and lockout state over time and restarts: an account's lockout survives a
//! restart, the sweep deletes what has expired (and nothing live), and last-seen times
//! follow authenticated requests without a write per request.

use crate::helpers::{TestApp, spawn_app_in};
use crate::users::{PASSWORD, get_auth, json, login, problem, register, token_from_mail, user};
use reqwest::StatusCode;
use serde_json::{Value, json};
use souk::auth::{SessionId, session};
use souk::services::users::sweep;

fn light(c: &mut souk::config::Config) {
    c.auth.argon2_memory_kib = 64;
    c.auth.argon2_iterations = 1;
}

async fn app_in(dir: tempfile::TempDir) -> TestApp {
    spawn_app_in(dir, light, axum::Router::new()).await
}

async fn fresh() -> TestApp {
    app_in(tempfile::tempdir().unwrap()).await
}

fn advance(app: &TestApp, secs: i64) {
    app.state.clock.advance(time::Duration::seconds(secs));
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post_json(path, &body).await
}

/// The caller's sessions as the API lists them.
async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let r = get_auth(app, "/api/v1/auth/sessions", token).await;
    assert_eq!(r.status(), StatusCode::OK);
    json(r).await["items"].as_array().unwrap().clone()
}

async fn current_session(app: &TestApp, token: &str) -> (SessionId, String) {
    let list = sessions(app, token).await;
    let s = list.iter().find(|s| s["current"] == true).unwrap();
    (
        s["id"].as_str().unwrap().parse().unwrap(),
        s["last_seen_at"].as_str().unwrap().to_string(),
    )
}

fn stored_last_seen(app: &TestApp, id: SessionId) -> time::OffsetDateTime {
    session::get(&app.state.store.read().unwrap(), id)
        .unwrap()
        .unwrap()
        .last_seen_at
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    souk::clock::rfc3339(t)
}

#[tokio::test]
async fn an_accounts_lockout_survives_a_restart() {
    let app = fresh().await;
    register(&app, "victim@example.com").await;
    register(&app, "bystander@example.com").await;
    let bad = json!({"email": "victim@example.com", "password": "not the password"});
    let good = json!({"email": "victim@example.com", "password": PASSWORD});
    for _ in 0..6 {
        let r = post(&app, "/api/v1/auth/login", bad.clone()).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = post(&app, "/api/v1/auth/login", good.clone()).await;
    assert!((1..=30).contains(&retry_after(&r)));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Password resets are counted per account too: five free, the sixth locks.
    for _ in 0..6 {
        let r = post(
            &app,
            "/api/v1/auth/forgot-password",
            json!({"email": "nobody@example.com"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }

    // A restart on the same data dir: the account is still locked, with the time left.
    let dir = app.stop().await;
    let app = app_in(dir).await;
    let r = post(&app, "/api/v1/auth/login", good.clone()).await;
    let left = retry_after(&r);
    assert!((1..=30).contains(&left), "{left}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let r = post(&app, "/api/v1/auth/login", bad.clone()).await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let r = post(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert!(retry_after(&r) >= 1);
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Only that account: another one on the same address logs in.
    login(&app, "bystander@example.com", PASSWORD).await;

    // Once the lock has run out the right password works and the count starts over:
    // five more failures are answered 401, not 429.
    advance(&app, left as i64 + 1);
    login(&app, "victim@example.com", PASSWORD).await;
    for _ in 0..5 {
        let r = post(&app, "/api/v1/auth/login", bad.clone()).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    login(&app, "victim@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_password_reset_lifts_the_lock_for_good() {
    let app = fresh().await;
    register(&app, "forgetful@example.com").await;
    let bad = json!({"email": "forgetful@example.com", "password": "wrong guess"});
    for _ in 0..6 {
        post(&app, "/api/v1/auth/login", bad.clone()).await;
    }
    let r = post(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "forgetful@example.com"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let token = token_from_mail(&app, "forgetful@example.com", "reset-password");
    let r = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "password": "a brand new passphrase"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let dir = app.stop().await;
    let app = app_in(dir).await;
    login(&app, "forgetful@example.com", "a brand new passphrase").await;
}

#[tokio::test]
async fn the_sweep_deletes_what_expired_and_nothing_live() {
    let app = fresh().await;
    let (_, _, laptop_refresh) = user(&app, "ada@example.com").await;
    let phone = login(&app, "ada@example.com", PASSWORD).await;
    let phone_access = phone["access_token"].as_str().unwrap().to_string();
    let phone_refresh = phone["refresh_token"].as_str().unwrap().to_string();
    let (phone_id, _) = current_session(&app, &phone_access).await;
    // The phone's refresh token rotates once (two hashes now point at it), then it logs out.
    let r = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": phone_refresh}),
    )
    .await;
    let phone_access = json(r).await["access_token"].as_str().unwrap().to_string();
    let r = app
        .request(reqwest::Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&phone_access)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // A reset link (30 min) and a lockout count on another account (forgotten after 24 h).
    post(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "ada@example.com"}),
    )
    .await;
    let reset = token_from_mail(&app, "ada@example.com", "reset-password");
    register(&app, "bob@example.com").await;
    for _ in 0..3 {
        let r = post(
            &app,
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": "wrong guess"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    // Nothing has expired yet: nothing goes.
    let report = sweep::run_once(&app.state).await.unwrap();
    assert_eq!(
        (report.sessions, report.grants, report.lockouts),
        (0, 0, 0),
        "{report:?}"
    );

    // A day and an hour later: the ended session (with both its refresh hashes), the reset
    // link, the forgotten lockout count (and the forgot-password count) go; the laptop's
    // session and the 48-hour verification links stay.
    advance(&app, 25 * 3600);
    let report = sweep::run_once(&app.state).await.unwrap();
    assert_eq!(report.sessions, 1, "{report:?}");
    assert_eq!(report.refresh_hashes, 2, "{report:?}");
    assert_eq!(report.grants, 1, "{report:?}");
    assert_eq!(report.lockouts, 2, "{report:?}");
    assert!(
        session::get(&app.state.store.read().unwrap(), phone_id)
            .unwrap()
            .is_none()
    );
    let r = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": reset, "password": "another new passphrase"}),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let r = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": laptop_refresh}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "the live session was kept");
    let laptop_refresh = json(r).await["refresh_token"].as_str().unwrap().to_string();

    // Eight days on, the laptop's session has expired and the verification links too.
    advance(&app, 8 * 86400);
    let report = sweep::run_once(&app.state).await.unwrap();
    assert_eq!(report.sessions, 1, "{report:?}");
    assert_eq!(report.refresh_hashes, 2, "{report:?}");
    assert_eq!(report.grants, 2, "{report:?}");
    let r = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": laptop_refresh}),
    )
    .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A second sweep finds nothing left.
    let report = sweep::run_once(&app.state).await.unwrap();
    assert_eq!(report, sweep::SweepReport::default());
}

#[tokio::test]
async fn the_sweep_runs_as_a_worker_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(
        dir,
        |c| {
            light(c);
            c.auth.sweep_interval_secs = 1;
            c.auth.last_seen_flush_secs = 1;
        },
        axum::Router::new(),
    )
    .await;
    let (_, access, _) = user(&app, "worker@example.com").await;
    let (id, _) = current_session(&app, &access).await;
    let workers = souk::app::App {
        state: app.state.clone(),
    }
    .start_workers()
    .unwrap();
    // A request two minutes on is noted, and the worker writes it within a tick or two.
    advance(&app, 120);
    let r = get_auth(&app, "/api/v1/users/profile", &access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen = app.state.clock.now();
    let mut written = false;
    for _ in 0..50 {
        if (stored_last_seen(&app, id) - seen).whole_seconds().abs() <= 1 {
            written = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(written, "the worker wrote the last-seen time");
    // Eight days on, the worker deletes the expired session.
    advance(&app, 8 * 86400);
    let mut deleted = false;
    for _ in 0..50 {
        if session::get(&app.state.store.read().unwrap(), id)
            .unwrap()
            .is_none()
        {
            deleted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(deleted, "the worker swept the expired session");
    workers
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn last_seen_follows_requests_once_a_minute_without_a_write_each() {
    let app = fresh().await;
    let (_, access, _) = user(&app, "seen@example.com").await;
    let (id, first) = current_session(&app, &access).await;
    let t0 = stored_last_seen(&app, id);
    assert_eq!(first, rfc3339(t0));

    // Under a minute later, requests note nothing.
    advance(&app, 30);
    let r = get_auth(&app, "/api/v1/users/profile", &access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.state.auth.last_seen.pending(id), None);
    assert_eq!(current_session(&app, &access).await.1, first);

    // Past the minute, twenty requests note one time in memory and write nothing.
    advance(&app, 45);
    let t1 = app.state.clock.now();
    for _ in 0..20 {
        let r = get_auth(&app, "/api/v1/users/profile", &access).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let noted = app.state.auth.last_seen.pending(id).unwrap();
    assert!((noted - t1).whole_seconds().abs() <= 1);
    assert_eq!(stored_last_seen(&app, id), t0, "no write per request");
    // The session list (itself a request on the session) already shows it.
    let listed = current_session(&app, &access).await.1;
    let noted = app.state.auth.last_seen.pending(id).unwrap();
    assert_eq!(listed, rfc3339(noted));
    assert!((noted - t1).whole_seconds().abs() <= 1);
    assert_eq!(stored_last_seen(&app, id), t0);

    // One flush writes it once; the list shows the same, and so does a restart.
    assert_eq!(sweep::flush_last_seen(&app.state).await.unwrap(), 1);
    assert_eq!(app.state.auth.last_seen.pending(id), None);
    assert_eq!(stored_last_seen(&app, id), noted);
    assert_eq!(sweep::flush_last_seen(&app.state).await.unwrap(), 0);
    let dir = app.stop().await;
    let app = app_in(dir).await;
    assert_eq!(current_session(&app, &access).await.1, rfc3339(noted));

    // A bad token notes nothing. (The restarted clock starts from the real time again,
    // so move well past the stored time.)
    advance(&app, 200);
    let r = get_auth(&app, "/api/v1/users/profile", "not-a-token").await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.state.auth.last_seen.pending(id), None);

    // A session that ends before the flush keeps its ended state: nothing is written.
    let r = get_auth(&app, "/api/v1/users/profile", &access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.state.auth.last_seen.pending(id).is_some());
    let r = app
        .request(reqwest::Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(sweep::flush_last_seen(&app.state).await.unwrap(), 0);
    assert_eq!(stored_last_seen(&app, id), noted);
    // And its token is refused, noting nothing.
    let r = get_auth(&app, "/api/v1/users/profile", &access).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(app.state.auth.last_seen.pending(id), None);
}
