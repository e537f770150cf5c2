//! MFA through HTTP, with codes computed here from the secret the server showed, the way
//! an authenticator app would: setup, enable, login with a code, replay, recovery codes.

use crate::users::{PASSWORD, app, field_errors, get_auth, json, login, problem, send_auth, user};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn code(secret_b32: &str, at: time::OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .unwrap();
    totp.generate(at.unix_timestamp() as u64).to_string()
}

async fn mfa_login(app: &crate::helpers::TestApp, email: &str) -> String {
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r).await;
    assert_eq!(body["mfa_required"], true);
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn verify(app: &crate::helpers::TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/mfa/verify",
        &json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

#[tokio::test]
async fn totp_setup_enable_login_and_recovery_codes() {
    let app = app().await;
    let (_, access, _) = user(&app, "mfa@example.com").await;
    let clock = app.state.clock.clone();

    // Enabling before setup is a conflict.
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/enable",
        &access,
        Some(json!({"code": "123456"})),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "mfa_not_set_up").await;

    let r = send_auth(&app, Method::POST, "/api/v1/auth/mfa/setup", &access, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let setup = json(r).await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Souk:mfa@example.com?secret="),
        "{uri}"
    );
    assert!(uri.contains(&secret));

    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/enable",
        &access,
        Some(json!({"code": "000000"})),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        field_errors(&p),
        vec![("code".to_string(), "invalid_code".to_string())]
    );
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/enable",
        &access,
        Some(json!({"code": code(&secret, clock.now())})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let recovery: Vec<String> =
        serde_json::from_value(json(r).await["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);
    let profile = json(get_auth(&app, "/api/v1/users/profile", &access).await).await;
    assert_eq!(profile["mfa_enabled"], true);

    // Password alone no longer gives tokens.
    let mfa_token = mfa_login(&app, "mfa@example.com").await;
    // The code used to enable cannot be replayed in the same step.
    let r = verify(&app, &mfa_token, &code(&secret, clock.now())).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    clock.advance(time::Duration::seconds(30));
    let r = verify(&app, "mfa_forged", &code(&secret, clock.now())).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let c = code(&secret, clock.now());
    let r = verify(&app, &mfa_token, &c).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens = json(r).await;
    let a = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", a).await.status(),
        StatusCode::OK
    );
    // The MFA token was single use.
    let r = verify(&app, &mfa_token, &c).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A recovery code works once.
    let t2 = mfa_login(&app, "mfa@example.com").await;
    let r = verify(&app, &t2, &recovery[0].to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t3 = mfa_login(&app, "mfa@example.com").await;
    let r = verify(&app, &t3, &recovery[0]).await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = verify(&app, &t3, &recovery[1]).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Disabling needs the password and a code.
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/disable",
        a,
        Some(json!({"password": "wrong password!", "code": recovery[2]})),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/disable",
        a,
        Some(json!({"password": PASSWORD, "code": "111111"})),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/disable",
        a,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    clock.advance(time::Duration::seconds(30));
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/disable",
        a,
        Some(json!({"password": PASSWORD, "code": code(&secret, clock.now())})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let t: Value = login(&app, "mfa@example.com", PASSWORD).await;
    assert!(t["access_token"].is_string());

    // MFA changes are audited.
    let admin = crate::users::admin(&app).await;
    let audit = json(get_auth(&app, "/api/v1/admin/audit", &admin).await).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"mfa.enabled") && actions.contains(&"mfa.disabled"),
        "{actions:?}"
    );
    assert!(
        !audit.to_string().contains(&secret),
        "the audit never shows the secret"
    );
}

#[tokio::test]
async fn wrong_codes_are_throttled() {
    let app = app().await;
    let (_, access, _) = user(&app, "slow@example.com").await;
    let clock = app.state.clock.clone();
    let setup =
        json(send_auth(&app, Method::POST, "/api/v1/auth/mfa/setup", &access, None).await).await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/enable",
        &access,
        Some(json!({"code": code(&secret, clock.now())})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    clock.advance(time::Duration::seconds(30));
    let t = mfa_login(&app, "slow@example.com").await;
    for _ in 0..6 {
        problem(
            verify(&app, &t, "000000").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    let r = verify(&app, &t, &code(&secret, clock.now())).await;
    assert!(r.headers().contains_key("retry-after"));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    clock.advance(time::Duration::seconds(31));
    // The MFA token lives 5 minutes: still valid, and now the right code passes.
    let r = verify(&app, &t, &code(&secret, clock.now())).await;
    assert_eq!(r.status(), StatusCode::OK);
}
