//! The account's life through HTTP: email verification, password reset read from the mail
//! file sink, profile changes that are refused, email change, and deletion.

use crate::users::{
    PASSWORD, app, field_errors, get_auth, json, login, mails, problem, register, send_auth,
    token_from_mail, user,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn password_reset_through_the_mail() {
    let app = app().await;
    let (_, access, refresh) = user(&app, "forgetful@example.com").await;
    let before = mails(&app).len();

    // Unknown address: the same 202, and no mail.
    let r = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(mails(&app).len(), before);
    let r = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "not an email"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

    let r = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "Forgetful@Example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(mails(&app).len(), before + 1);
    let token = token_from_mail(&app, "forgetful@example.com", "/account/reset-password");

    // A bad new password is refused and the token survives.
    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "short"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        field_errors(&p),
        vec![("password".to_string(), "password_too_short".to_string())]
    );
    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": "rs_forged", "password": "a brand new secret"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(field_errors(&p)[0].1, "invalid_token");

    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "a brand new secret"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Every session ended; the old password is dead; the token is single use.
    problem(
        get_auth(&app, "/api/v1/users/profile", &access).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "forgetful@example.com", "password": PASSWORD}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    login(&app, "forgetful@example.com", "a brand new secret").await;
    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "another new secret"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

    // Links expire after 30 minutes.
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "forgetful@example.com"}),
    )
    .await;
    let token = token_from_mail(&app, "forgetful@example.com", "/account/reset-password");
    app.state.clock.advance(time::Duration::minutes(31));
    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "another new secret"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

#[tokio::test]
async fn email_verification_and_email_change() {
    let app = app().await;
    let (_, access, _) = user(&app, "verify@example.com").await;
    let profile = json(get_auth(&app, "/api/v1/users/profile", &access).await).await;
    assert_eq!(profile["email_verified"], false);

    // Changing the email needs a verified address first.
    let change = json!({"email": "new@example.com", "current_password": PASSWORD});
    let r = send_auth(
        &app,
        Method::PUT,
        "/api/v1/users/profile",
        &access,
        Some(change.clone()),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert!(field_errors(&p).contains(&("email".into(), "email_not_verified".into())));

    let token = token_from_mail(&app, "verify@example.com", "/account/verify-email");
    let r = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let profile = json(get_auth(&app, "/api/v1/users/profile", &access).await).await;
    assert_eq!(profile["email_verified"], true);
    let r = send_auth(
        &app,
        Method::POST,
        "/api/v1/auth/resend-verification",
        &access,
        None,
    )
    .await;
    problem(r, StatusCode::CONFLICT, "already_verified").await;

    // Without the password, with a wrong one, to a taken address: refused, nothing changes.
    let r = send_auth(
        &app,
        Method::PUT,
        "/api/v1/users/profile",
        &access,
        Some(json!({"email": "new@example.com"})),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert!(field_errors(&p).contains(&("current_password".into(), "missing".into())));
    let r = send_auth(
        &app,
        Method::PUT,
        "/api/v1/users/profile",
        &access,
        Some(json!({"email": "new@example.com", "current_password": "wrong password!"})),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    register(&app, "taken@example.com").await;
    let r = send_auth(
        &app,
        Method::PUT,
        "/api/v1/users/profile",
        &access,
        Some(json!({"email": "TAKEN@example.com", "current_password": PASSWORD})),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(
        json(get_auth(&app, "/api/v1/users/profile", &access).await).await["email"],
        "verify@example.com"
    );

    let r = send_auth(
        &app,
        Method::PUT,
        "/api/v1/users/profile",
        &access,
        Some(change),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = json(r).await;
    assert_eq!(
        (p["email"].as_str(), p["email_verified"].as_bool()),
        (Some("new@example.com"), Some(false))
    );
    login(&app, "new@example.com", PASSWORD).await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "verify@example.com", "password": PASSWORD}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let token = token_from_mail(&app, "new@example.com", "/account/verify-email");
    let r = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn refused_profile_changes_change_nothing() {
    let app = app().await;
    let (_, access, _) = user(&app, "steady@example.com").await;
    let before = json(get_auth(&app, "/api/v1/users/profile", &access).await).await;
    let cases = [
        (json!({"role": "admin"}), "role", "not_allowed"),
        (
            json!({"status": "active", "name": "New"}),
            "status",
            "not_allowed",
        ),
        (
            json!({"email_verified": true}),
            "email_verified",
            "not_allowed",
        ),
        (
            json!({"vendor_id": "0190a0a0-0000-7000-8000-000000000000"}),
            "vendor_id",
            "not_allowed",
        ),
        (
            json!({"favourite_colour": "blue"}),
            "favourite_colour",
            "unknown_field",
        ),
        (json!({"phone": "call me maybe"}), "phone", "invalid_phone"),
        (json!({"locale": "English"}), "locale", "invalid_locale"),
        (json!({"name": ""}), "name", "required"),
        (
            json!({"marketing_consent": "yes"}),
            "marketing_consent",
            "invalid_type",
        ),
        (
            json!({"addresses": [{"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "France"}]}),
            "addresses[0].country",
            "invalid_country",
        ),
        (
            json!({"addresses": [{"name": "A", "line1": "x", "city": "y", "postal_code": "1", "country": "FR", "floor": 3}]}),
            "addresses[0].floor",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        let r = send_auth(
            &app,
            Method::PUT,
            "/api/v1/users/profile",
            &access,
            Some(body.clone()),
        )
        .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(
            field_errors(&p).contains(&(field.to_string(), code.to_string())),
            "{body} gave {p}"
        );
    }
    let after = json(get_auth(&app, "/api/v1/users/profile", &access).await).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn deletion_anonymises_and_revokes() {
    let app = app().await;
    let (id, access, refresh) = user(&app, "leaving@example.com").await;
    let key = json(
        send_auth(
            &app,
            Method::POST,
            "/api/v1/api-keys",
            &access,
            Some(json!({"name": "script"})),
        )
        .await,
    )
    .await;
    let key = key["key"].as_str().unwrap().to_string();

    let r = send_auth(
        &app,
        Method::DELETE,
        "/api/v1/users/account",
        &access,
        Some(json!({"password": "wrong password!"})),
    )
    .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let r = send_auth(&app, Method::DELETE, "/api/v1/users/account", &access, None).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &access)
            .await
            .status(),
        StatusCode::OK
    );

    let r = send_auth(
        &app,
        Method::DELETE,
        "/api/v1/users/account",
        &access,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        get_auth(&app, "/api/v1/users/profile", &access).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    problem(
        get_auth(&app, "/api/v1/users/profile", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let r = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "leaving@example.com", "password": PASSWORD}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The record stays (orders point at it) with nothing personal left.
    let admin = crate::users::admin(&app).await;
    let r = get_auth(&app, &format!("/api/v1/users/{id}"), &admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    let u = json(r).await;
    assert_eq!(u["status"], "deleted");
    assert_eq!(u["name"], "Deleted user");
    assert!(!u.to_string().contains("leaving"), "{u}");
    assert!(u["phone"].is_null() && u["addresses"].as_array().unwrap().is_empty());
    // The address is free again.
    register(&app, "leaving@example.com").await;
}

#[tokio::test]
async fn password_change_checks_the_current_one_and_ends_other_sessions() {
    let app = app().await;
    let (_, access, _) = user(&app, "changer@example.com").await;
    let other = login(&app, "changer@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/api/v1/users/password";

    // Refused: no token, a wrong current password, a weak or email-equal new one, an
    // unknown field. None of them changes anything.
    let r = app
        .request(Method::PUT, path)
        .json(&json!({"current_password": PASSWORD, "new_password": "another long secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let wrong =
        json!({"current_password": "not my password", "new_password": "another long secret"});
    let p = problem(
        send_auth(&app, Method::PUT, path, &access, Some(wrong)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(
        field_errors(&p),
        vec![("current_password".to_string(), "wrong_password".to_string())]
    );
    let weak = json!({"current_password": PASSWORD, "new_password": "short"});
    let p = problem(
        send_auth(&app, Method::PUT, path, &access, Some(weak)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(
        field_errors(&p),
        vec![("new_password".to_string(), "password_too_short".to_string())]
    );
    let extra =
        json!({"current_password": PASSWORD, "new_password": "another long secret", "admin": true});
    let p = problem(
        send_auth(&app, Method::PUT, path, &access, Some(extra)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(
        field_errors(&p),
        vec![("admin".to_string(), "unknown_field".to_string())]
    );
    login(&app, "changer@example.com", PASSWORD).await;
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &other)
            .await
            .status(),
        StatusCode::OK
    );

    let ok = json!({"current_password": PASSWORD, "new_password": "another long secret"});
    let r = send_auth(&app, Method::PUT, path, &access, Some(ok)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // This session goes on; the other one ended; only the new password works.
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &access)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get_auth(&app, "/api/v1/users/profile", &other)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "changer@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    login(&app, "changer@example.com", "another long secret").await;
}
