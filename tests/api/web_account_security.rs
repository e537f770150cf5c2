//! /account/security through the browser: MFA set up from the QR page (codes computed from
//! the secret the page shows, as an authenticator would), recovery codes shown once,
//! signing in with a code and with a recovery code, turning MFA off; changing the
//! password; the session list and ending a session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::users::PASSWORD;
use crate::web_account::{app, assert_see_other, post_from, register, sign_in, sign_out};
use crate::web_client::{Browser, Got, assert_clean};
use reqwest::StatusCode;

fn totp(secret_b32: &str, at: time::OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .unwrap()
        .as_bytes()
        .to_vec();
    let t = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .unwrap();
    t.generate(at.unix_timestamp() as u64).to_string()
}

fn attr(body: &str, name: &str) -> String {
    let needle = format!("{name}=\"");
    let s = &body[body.find(&needle).expect(name) + needle.len()..];
    s[..s.find('"').unwrap()].to_string()
}

/// The recovery codes listed on the page.
fn codes(g: &Got) -> Vec<String> {
    g.body
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_string())
        .collect()
}

#[tokio::test]
async fn mfa_is_set_up_from_the_qr_page_and_guards_the_next_sign_in() {
    let app = app().await;
    let clock = app.state.clock.clone();
    let advance = || clock.advance(time::Duration::seconds(31));
    let mut b = Browser::new(&app);
    register(&mut b, "Mia", "mia@example.com").await;

    let sec = b.get("/account/security").await;
    sec.assert_page("security");
    assert!(sec.body.contains("Set up two-factor authentication"));
    // Nothing to set up yet: the setup page sends back.
    assert_see_other(&b.get("/account/security/mfa").await, "/account/security");
    let g = post_from(
        &mut b,
        "/account/security",
        "/account/security/mfa/setup",
        &[],
    )
    .await;
    assert_see_other(&g, "/account/security/mfa");
    let setup = b.get("/account/security/mfa").await;
    setup.assert_page("mfa setup");
    assert!(
        setup
            .body
            .contains("<svg class=\"qr\" role=\"img\" aria-label=\"")
    );
    assert!(!setup.body.contains("<?xml"));
    let secret = attr(&setup.body, "data-secret");
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert_eq!(setup.headers["cache-control"], "no-store");

    // A wrong code is refused and MFA stays off.
    let g = post_from(
        &mut b,
        "/account/security/mfa",
        "/account/security/mfa/enable",
        &[("code", "000000")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&g.body, "bad code");
    assert!(g.body.contains("This code does not match."));
    assert_eq!(
        attr(&g.body, "data-secret"),
        secret,
        "the same secret again"
    );
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("Continue the setup"), "MFA stays off");

    let code = totp(&secret, clock.now());
    let g = post_from(
        &mut b,
        "/account/security/mfa",
        "/account/security/mfa/enable",
        &[("code", &code)],
    )
    .await;
    g.assert_page("recovery codes");
    assert_eq!(g.headers["cache-control"], "no-store");
    let recovery = codes(&g);
    assert_eq!(recovery.len(), 10, "{}", g.body);
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("10 recovery code(s) left."));
    assert!(!sec.body.contains(&recovery[0]), "codes are shown once");
    sign_out(&mut b).await;

    // The password alone now leads to the code step, with the token in a cookie only.
    let g = post_from(
        &mut b,
        "/signin",
        "/signin",
        &[
            ("email", "mia@example.com"),
            ("password", PASSWORD),
            ("next", "/account/orders"),
        ],
    )
    .await;
    assert_see_other(&g, "/signin/mfa?next=%2Faccount%2Forders");
    assert!(!b.cookies.contains_key("souk_session"));
    let mfa_cookie = b.cookies.get("souk_mfa").cloned().expect("mfa step cookie");
    let page = b.get("/signin/mfa?next=%2Faccount%2Forders").await;
    page.assert_page("mfa challenge");
    assert!(
        !page.body.contains(&mfa_cookie),
        "the token stays out of the page"
    );
    let g = post_from(
        &mut b,
        "/signin/mfa?next=%2Faccount%2Forders",
        "/signin/mfa",
        &[("code", "123456"), ("next", "/account/orders")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    assert!(g.body.contains("This code is not valid."));
    assert!(!b.cookies.contains_key("souk_session"));
    // The code already used to enable cannot be replayed; the next one works.
    advance();
    let g = post_from(
        &mut b,
        "/signin/mfa",
        "/signin/mfa",
        &[
            ("code", &totp(&secret, clock.now())),
            ("next", "/account/orders"),
        ],
    )
    .await;
    assert_see_other(&g, "/account/orders");
    assert!(b.cookies.contains_key("souk_session"));
    assert!(
        !b.cookies.contains_key("souk_mfa"),
        "the step cookie is cleared"
    );
    sign_out(&mut b).await;

    // A recovery code works once.
    for (attempt, want) in [(0, StatusCode::SEE_OTHER), (1, StatusCode::UNAUTHORIZED)] {
        sign_in(&mut b, "mia@example.com", PASSWORD).await;
        let code = recovery[0].to_uppercase();
        let g = post_from(&mut b, "/signin/mfa", "/signin/mfa", &[("code", &code)]).await;
        assert_eq!(g.status, want, "attempt {attempt}: {}", g.body);
        if want == StatusCode::SEE_OTHER {
            assert_see_other(&g, "/");
            sign_out(&mut b).await;
        }
    }
    b.cookies.remove("souk_mfa");
    assert_see_other(&b.get("/signin/mfa").await, "/signin");

    // Turning it off needs the password and a code.
    advance();
    sign_in(&mut b, "mia@example.com", PASSWORD).await;
    let g = post_from(
        &mut b,
        "/signin/mfa",
        "/signin/mfa",
        &[("code", &recovery[1])],
    )
    .await;
    assert_see_other(&g, "/");
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("8 recovery code(s) left."));
    advance();
    let g = post_from(
        &mut b,
        "/account/security",
        "/account/security/mfa/disable",
        &[
            ("password", "not my password"),
            ("code", &totp(&secret, clock.now())),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("This is not your current password."));
    let g = post_from(
        &mut b,
        "/account/security",
        "/account/security/mfa/disable",
        &[
            ("password", PASSWORD),
            ("code", &totp(&secret, clock.now())),
        ],
    )
    .await;
    assert_see_other(&g, "/account/security");
    let sec = b.get("/account/security").await;
    assert!(sec.body.contains("Two-factor authentication is off."));
    sign_out(&mut b).await;
    let g = sign_in(&mut b, "mia@example.com", PASSWORD).await;
    assert_see_other(&g, "/");
}

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let app = app().await;
    let mut b = Browser::new(&app);
    register(&mut b, "Pat", "pat@example.com").await;
    let mut phone = Browser::new(&app);
    sign_in(&mut phone, "pat@example.com", PASSWORD).await;
    let new = "another long passphrase";

    for (form, needle) in [
        (
            [
                ("current_password", "wrong wrong wrong"),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
            "This is not your current password.",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_confirm", "typo"),
            ],
            "The two passwords are not the same.",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("new_password", "pat@example.com"),
                ("new_password_confirm", "pat@example.com"),
            ],
            "must not be your email address",
        ),
    ] {
        let g = post_from(
            &mut b,
            "/account/security",
            "/account/security/password",
            &form,
        )
        .await;
        assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY, "{needle}");
        assert_clean(&g.body, needle);
        assert!(g.body.contains(needle), "{needle}: {}", g.body);
    }
    phone
        .get("/account")
        .await
        .assert_page("phone still signed in");

    let g = post_from(
        &mut b,
        "/account/security",
        "/account/security/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", new),
            ("new_password_confirm", new),
        ],
    )
    .await;
    assert_see_other(&g, "/account/security");
    b.get("/account").await.assert_page("this session stays");
    assert_eq!(phone.get("/account").await.status, StatusCode::SEE_OTHER);
    sign_out(&mut b).await;
    let g = post_from(
        &mut b,
        "/signin",
        "/signin",
        &[("email", "pat@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    sign_in(&mut b, "pat@example.com", new).await;

    // Guessing the current password is throttled like a login.
    let wrong = [
        ("current_password", "a wrong guess here"),
        ("new_password", PASSWORD),
        ("new_password_confirm", PASSWORD),
    ];
    let mut locked = false;
    for _ in 0..8 {
        let g = post_from(
            &mut b,
            "/account/security",
            "/account/security/password",
            &wrong,
        )
        .await;
        if g.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(g.body.contains("Too many attempts."), "{}", g.body);
            locked = true;
            break;
        }
        assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert!(locked, "the guesses were stopped");
    let right = [
        ("current_password", new),
        ("new_password", PASSWORD),
        ("new_password_confirm", PASSWORD),
    ];
    let g = post_from(
        &mut b,
        "/account/security",
        "/account/security/password",
        &right,
    )
    .await;
    assert_eq!(
        g.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right one, while locked"
    );
}

#[tokio::test]
async fn sessions_are_listed_and_one_can_be_signed_out() {
    let app = app().await;
    let mut laptop = Browser::new(&app);
    register(&mut laptop, "Sam", "sam@example.com").await;
    let mut phone = Browser::new(&app);
    sign_in(&mut phone, "sam@example.com", PASSWORD).await;

    let sec = laptop.get("/account/security").await;
    sec.assert_page("sessions");
    let ids: Vec<String> = sec
        .body
        .split("action=\"/account/security/sessions/")
        .skip(1)
        .map(|s| s[..s.find('/').unwrap()].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{}", sec.body);
    assert_eq!(sec.body.matches("This device").count(), 1);
    assert!(sec.body.contains("127.0.0.1"));
    // The row marked "This device" is the laptop's (its button follows the mark).
    let current_at = sec.body.find("This device").unwrap();
    let own = sec.body[current_at..]
        .split("action=\"/account/security/sessions/")
        .nth(1)
        .map(|s| s[..s.find('/').unwrap()].to_string())
        .unwrap();
    let other = ids.iter().find(|i| **i != own).unwrap().clone();

    // Someone else cannot end it.
    let mut eve = Browser::new(&app);
    register(&mut eve, "Eve", "eve@example.com").await;
    let g = post_from(
        &mut eve,
        "/account/security",
        &format!("/account/security/sessions/{other}/end"),
        &[],
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    let g = post_from(
        &mut eve,
        "/account/security",
        "/account/security/sessions/nonsense/end",
        &[],
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    phone.get("/account").await.assert_page("phone untouched");

    let g = post_from(
        &mut laptop,
        "/account/security",
        &format!("/account/security/sessions/{other}/end"),
        &[],
    )
    .await;
    assert_see_other(&g, "/account/security#sessions");
    assert_eq!(
        phone.get("/account").await.status,
        StatusCode::SEE_OTHER,
        "phone signed out"
    );
    let sec = laptop.get("/account/security").await;
    assert!(sec.body.contains("That session is signed out."));
    assert_eq!(
        sec.body
            .matches("action=\"/account/security/sessions/")
            .count(),
        1
    );

    // Ending this device's own session is signing out.
    let g = post_from(
        &mut laptop,
        "/account/security",
        &format!("/account/security/sessions/{own}/end"),
        &[],
    )
    .await;
    assert_see_other(&g, "/");
    assert_eq!(laptop.get("/account").await.status, StatusCode::SEE_OTHER);
}
