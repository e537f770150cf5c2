//! Accounts through HTTP: registration, login, profile, refresh, logout, sessions, token
//! expiry and key rotation, forged tokens, lockout. Shared helpers for the other
//! `users_*` modules live here too.

#![allow(dead_code)]

use crate::helpers::{TestApp, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// A server with light argon2 parameters (the defaults stay OWASP's).
pub async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
    })
    .await
}

pub async fn json(r: reqwest::Response) -> Value {
    r.json().await.expect("json body")
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
pub async fn problem(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "content type");
    let body = json(r).await;
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

/// The field errors of a 422, as (field, code) pairs.
pub fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("").to_string(),
                        e["code"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn register(app: &TestApp, email: &str) -> Value {
    let r = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    json(r).await
}

/// Logs in and returns the token answer.
pub async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "login of {email}");
    json(r).await
}

/// Registers and logs in; returns (user id, access token, refresh token).
pub async fn user(app: &TestApp, email: &str) -> (String, String, String) {
    let u = register(app, email).await;
    let t = login(app, email, PASSWORD).await;
    (
        u["id"].as_str().unwrap().to_string(),
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// Creates an admin through the library (what `souk admin create` does) and logs in.
pub async fn admin(app: &TestApp) -> String {
    souk::services::users::admin::create_admin(&app.state, "root@example.com", PASSWORD, None)
        .await
        .unwrap();
    login(app, "root@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn get_auth(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn send_auth(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut b = app.request(method, path).bearer_auth(token);
    if let Some(v) = body {
        b = b.json(&v);
    }
    b.send().await.unwrap()
}

/// Every message in the mail file sink, oldest first.
pub fn mails(app: &TestApp) -> Vec<String> {
    let dir = app.dir.path().join("mail");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Undoes quoted-printable (RFC 2045 §6.7), which mail uses for lines as long as a link.
fn unquote(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The token of the last message to `to` whose link contains `path`.
pub fn token_from_mail(app: &TestApp, to: &str, path: &str) -> String {
    let mail = mails(app)
        .into_iter()
        .rev()
        .find(|m| m.contains(&format!("To: {to}")) && m.contains(path))
        .unwrap_or_else(|| panic!("no mail to {to} with {path}"));
    let mail = if mail.contains("quoted-printable") {
        unquote(&mail)
    } else {
        mail
    };
    let start = mail.find("token=").expect("token in mail") + "token=".len();
    mail[start..].split_whitespace().next().unwrap().to_string()
}

fn advance(app: &TestApp, secs: i64) {
    app.state.clock.advance(time::Duration::seconds(secs));
}

#[tokio::test]
async fn register_login_profile_refresh_logout() {
    let app = app().await;
    let u = register(&app, "  Ada.Lovelace@Example.COM ").await;
    assert_eq!(u["email"], "Ada.Lovelace@example.com");
    assert_eq!(u["role"], "customer");
    assert_eq!(u["email_verified"], false);
    assert!(u.get("password_hash").is_none() && !u.to_string().contains("argon2"));

    // Uniqueness ignores case.
    let r = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "ada.lovelace@EXAMPLE.com", "password": PASSWORD, "name": "Other"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "email_taken").await;

    let t = login(&app, "ADA.LOVELACE@example.com", PASSWORD).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert_eq!(t["user"]["id"], u["id"]);
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();

    let r = get_auth(&app, "/api/v1/users/profile", access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["email"], "Ada.Lovelace@example.com");

    let r = send_auth(
        &app,
        reqwest::Method::PUT,
        "/api/v1/users/profile",
        access,
        Some(
            json!({"name": "Ada King", "phone": "+44 20 7946 0000", "locale": "en-GB",
            "marketing_consent": true,
            "addresses": [{"name": "Ada", "line1": "1 St James's Square", "city": "London",
                "postal_code": "SW1Y 4JH", "country": "GB"}]}),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = json(r).await;
    assert_eq!(p["name"], "Ada King");
    assert_eq!(p["addresses"][0]["city"], "London");
    assert_eq!(p["marketing_consent"], true);

    // Refresh: new pair, the old refresh token is dead.
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2 = json(r).await;
    let access2 = t2["access_token"].as_str().unwrap();
    assert_ne!(t2["refresh_token"], t["refresh_token"]);
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", access2)
            .await
            .status(),
        StatusCode::OK
    );

    let r = send_auth(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        access2,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Both access tokens of the session are refused at once, and so is the refresh token.
    for a in [access, access2] {
        let r = get_auth(&app, "/api/v1/users/profile", a).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": t2["refresh_token"]}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Without credentials: 401 saying which scheme to use.
    let r = app.get("/api/v1/users/profile").await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn bad_registrations_are_refused_and_create_nothing() {
    let app = app().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}),
            "email",
            "invalid_email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            "password",
            "password_too_short",
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(1025), "name": "A"}),
            "password",
            "password_too_long",
        ),
        (
            json!({"email": "a@example.com", "password": "Password123", "name": "A"}),
            "password",
            "password_too_common",
        ),
        (
            json!({"email": "a@example.com", "password": "qwertyuiop", "name": "A"}),
            "password",
            "password_too_common",
        ),
        (
            json!({"email": "alan.turing@example.com", "password": "Alan.Turing@example.com", "name": "A"}),
            "password",
            "password_is_email",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "  "}),
            "name",
            "required",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD}),
            "name",
            "missing",
        ),
        (
            json!({"email": "a@example.com", "password": 1234567890, "name": "A"}),
            "password",
            "invalid_type",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "A", "role": "admin"}),
            "role",
            "unknown_field",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "A", "nickname": "x"}),
            "nickname",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        let r = app.post_json("/api/v1/auth/register", &body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&p).contains(&(field.to_string(), code.to_string())),
            "{body} gave {p}"
        );
    }
    // Malformed JSON and a wrong content type.
    let r = app
        .request(reqwest::Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "bad_request").await;
    let r = app
        .request(reqwest::Method::POST, "/api/v1/auth/register")
        .body("email=a@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing was created: every address above is still free and cannot log in.
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(mails(&app).is_empty(), "no verification mail went out");
    register(&app, "a@example.com").await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = app().await;
    register(&app, "grace@example.com").await;
    let a = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "grace@example.com", "password": "wrong password!"}),
        )
        .await;
    let a = problem(a, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let b = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "nobody@example.com", "password": "wrong password!"}),
        )
        .await;
    let b = problem(b, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(a["detail"], b["detail"]);
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "grace@example.com", "password": PASSWORD, "remember": true}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_session() {
    let app = app().await;
    let (_, access, refresh) = user(&app, "eve@example.com").await;
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    let t2 = json(r).await;
    // The thief replays the old token: refused, and the legitimate holder is cut off too.
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": t2["refresh_token"]}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    for a in [access.as_str(), t2["access_token"].as_str().unwrap()] {
        problem(
            get_auth(&app, "/api/v1/users/profile", a).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    // A fresh login still works.
    login(&app, "eve@example.com", PASSWORD).await;
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": "rt_nonsense"}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn access_tokens_expire_and_survive_key_rotation() {
    let app = app().await;
    let (_, old_access, refresh) = user(&app, "kid@example.com").await;
    let old_kid = app.state.auth.current_kid().unwrap();

    let new_kid = souk::auth::rotate_keys(&app.state.config).unwrap();
    app.state.auth.reload_keys(app.state.clock.now()).unwrap();
    assert_ne!(old_kid, new_kid);
    let t = login(&app, "kid@example.com", PASSWORD).await;
    let new_access = t["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(new_access).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(
        jsonwebtoken::decode_header(&old_access)
            .unwrap()
            .kid
            .as_deref(),
        Some(old_kid.as_str())
    );
    // Tokens signed with the old key stay valid until they expire.
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &old_access)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", new_access)
            .await
            .status(),
        StatusCode::OK
    );

    advance(&app, 901);
    for a in [old_access.as_str(), new_access] {
        problem(
            get_auth(&app, "/api/v1/users/profile", a).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    // The refresh token lives for 7 days and mints a token signed with the new key.
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t = json(r).await;
    let a = t["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(a).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", a).await.status(),
        StatusCode::OK
    );
    // After 7 days without use the session is gone.
    advance(&app, 7 * 24 * 3600 + 1);
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": t["refresh_token"]}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let app = app().await;
    let (id, access, _) = user(&app, "mallory@example.com").await;
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let kid = app.state.auth.current_kid().unwrap();
    claims["role"] = json!("admin");
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap());

    let none = format!(
        "{}.{payload}.",
        B64.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#))
    );
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    // HS256 keyed with something public (the classic confusion attack).
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(kid.as_bytes()),
    )
    .unwrap();
    let mut wrong_iss = claims.clone();
    wrong_iss["role"] = json!("customer");
    wrong_iss["iss"] = json!("someone-else");
    let unsigned_iss = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&wrong_iss).unwrap()),
        parts[2]
    );
    for bad in [
        none.as_str(),
        tampered.as_str(),
        hs.as_str(),
        unsigned_iss.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let r = get_auth(&app, "/api/v1/users/profile", bad).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let r = get_auth(&app, &format!("/api/v1/users/{id}"), bad).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // Wrong scheme.
    let r = app
        .request(reqwest::Method::GET, "/api/v1/users/profile")
        .header("authorization", format!("Basic {access}"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A token from another installation (its own keys) with the same kid.
    let other = tempfile::tempdir().unwrap();
    let mut ring = souk::auth::keys::load_key_ring(other.path(), app.state.clock.now()).unwrap();
    ring.current_kid = kid;
    let c: souk::auth::tokens::Claims =
        serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let foreign = souk::auth::tokens::sign(&ring, &c).unwrap();
    problem(
        get_auth(&app, "/api/v1/users/profile", &foreign).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // The genuine token still works.
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &access)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_lock_with_backoff() {
    let app = app().await;
    register(&app, "victim@example.com").await;
    let bad = json!({"email": "victim@example.com", "password": "not the password"});
    for _ in 0..5 {
        let r = app.post_json("/api/v1/auth/login", &bad).await;
        problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // The sixth failure locks the account for 30 s.
    let r = app.post_json("/api/v1/auth/login", &bad).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let good = json!({"email": "victim@example.com", "password": PASSWORD});
    let r = app.post_json("/api/v1/auth/login", &good).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    advance(&app, 31);
    // Another failure doubles the lock.
    let r = app.post_json("/api/v1/auth/login", &bad).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app.post_json("/api/v1/auth/login", &good).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((31..=60).contains(&retry), "{retry}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    advance(&app, 61);
    login(&app, "victim@example.com", PASSWORD).await;
    // The failures are in the audit trail.
    let admin = admin(&app).await;
    let r = get_auth(&app, "/api/v1/admin/audit?limit=200", &admin).await;
    let audit = json(r).await;
    let failed = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login.failed")
        .count();
    assert_eq!(failed, 7);
}

#[tokio::test]
async fn users_see_and_end_their_own_sessions() {
    let app = app().await;
    let (_, phone, _) = user(&app, "multi@example.com").await;
    let laptop = login(&app, "multi@example.com", PASSWORD).await;
    let laptop = laptop["access_token"].as_str().unwrap();
    let (_, other, _) = user(&app, "other@example.com").await;

    let r = get_auth(&app, "/api/v1/auth/sessions", laptop).await;
    let list = json(r).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(items.iter().all(|s| s["ip"] == "127.0.0.1"));
    let phone_session = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone else cannot end it: 404, and it keeps working.
    let r = send_auth(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/auth/sessions/{phone_session}"),
        &other,
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &phone)
            .await
            .status(),
        StatusCode::OK
    );

    let r = send_auth(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/auth/sessions/{phone_session}"),
        laptop,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        get_auth(&app, "/api/v1/users/profile", &phone).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", laptop)
            .await
            .status(),
        StatusCode::OK
    );
    let r = send_auth(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/auth/sessions/not-an-id",
        laptop,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
