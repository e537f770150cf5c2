//! The account pages through a cookie-keeping browser: guests sent to sign in, register →
//! sign out → sign in through the forms, `?next=` kept local, CSRF refusals that change
//! nothing, profile and addresses. Helpers for the other `web_account_*` modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::TestApp;
use crate::users::{self, PASSWORD};
use crate::web_client::{Browser, Got, assert_clean, input_value};
use reqwest::StatusCode;

pub async fn app() -> TestApp {
    users::app().await
}

/// POSTs `form` with the CSRF token of the page at `from`; the answer is not followed.
pub async fn post_from(b: &mut Browser, from: &str, path: &str, form: &[(&str, &str)]) -> Got {
    let csrf = b.get(from).await.csrf();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(form);
    b.post(path, &all).await
}

pub fn assert_see_other(g: &Got, to: &str) {
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    assert_eq!(g.location().as_deref(), Some(to));
}

/// Registers through the page and leaves the browser signed in.
pub async fn register(b: &mut Browser, name: &str, email: &str) {
    let g = post_from(
        b,
        "/register",
        "/register",
        &[
            ("name", name),
            ("email", email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_see_other(&g, "/");
    assert!(b.cookies.contains_key("souk_session"));
}

/// Signs in through the page (no MFA), following to wherever it leads.
pub async fn sign_in(b: &mut Browser, email: &str, password: &str) -> Got {
    let g = post_from(
        b,
        "/signin",
        "/signin",
        &[("email", email), ("password", password)],
    )
    .await;
    assert_eq!(g.status, StatusCode::SEE_OTHER, "{}", g.body);
    g
}

pub async fn sign_out(b: &mut Browser) {
    let g = post_from(b, "/", "/signout", &[]).await;
    assert_see_other(&g, "/");
    assert!(!b.cookies.contains_key("souk_session"));
}

pub const ACCOUNT_PAGES: &[&str] = &[
    "/account",
    "/account/addresses/new",
    "/account/notifications",
    "/account/security",
    "/account/orders",
    "/account/wallet",
    "/account/cards",
];

#[tokio::test]
async fn guests_are_sent_to_sign_in_and_the_public_pages_render() {
    let app = app().await;
    let mut b = Browser::new(&app);
    let order = "/account/orders/0190d9a0-0000-7000-8000-000000000000";
    for path in ACCOUNT_PAGES
        .iter()
        .copied()
        .chain([order, "/account/security/mfa"])
    {
        let g = b.get(path).await;
        let want = format!("/signin?next={}", urlenc(path));
        assert_see_other(&g, &want);
    }
    let g = b.get("/account/orders?cursor=abc").await;
    assert_see_other(&g, "/signin?next=%2Faccount%2Forders%3Fcursor%3Dabc");

    for (path, needle) in [
        ("/signin", "name=\"password\""),
        ("/register", "name=\"password_confirm\""),
        ("/forgot-password", "name=\"email\""),
        ("/reset-password?token=rs_x", "name=\"token\""),
        ("/account/reset-password?token=rs_x", "name=\"token\""),
        ("/account/verify-email?token=ve_x", "name=\"token\""),
    ] {
        let g = b.get(path).await;
        g.assert_page(path);
        assert!(g.body.contains(needle), "{path}");
        assert!(
            g.body
                .contains("<meta name=\"robots\" content=\"noindex\">"),
            "{path}"
        );
        // Every input has a label tied to it.
        for id in g.body.split("<input id=\"").skip(1) {
            let id = &id[..id.find('"').unwrap()];
            assert!(
                g.body.contains(&format!("<label for=\"{id}\"")),
                "{path}: {id}"
            );
        }
    }
    // A reset page without its token says so instead of showing a useless form.
    let g = b.get("/reset-password").await;
    g.assert_page("reset without token");
    assert!(g.body.contains("invalid, used or expired"));
    assert!(!g.body.contains("name=\"password\""));
    // The MFA step without its cookie goes back to sign in.
    let g = b.get("/signin/mfa").await;
    assert_see_other(&g, "/signin");
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn register_sign_out_and_sign_in_through_the_forms() {
    let app = app().await;
    let mut b = Browser::new(&app);

    // Refused registrations show the form again with the messages, and create nothing.
    let page = b.get("/register?next=/account/orders").await;
    page.assert_page("register");
    assert_eq!(
        input_value(&page.body, "next").as_deref(),
        Some("/account/orders")
    );
    let g = post_from(
        &mut b,
        "/register",
        "/register",
        &[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("password_confirm", "something else entirely"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&g.body, "mismatch");
    assert!(g.body.contains("The two passwords are not the same."));
    assert_eq!(
        input_value(&g.body, "email").as_deref(),
        Some("ada@example.com")
    );
    assert!(
        !g.body.contains(PASSWORD),
        "a password is never written back"
    );
    let g = post_from(
        &mut b,
        "/register",
        "/register",
        &[
            ("name", ""),
            ("email", "not-an-email"),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        g.body
            .contains("Enter an email address like name@example.com.")
    );
    assert!(g.body.contains("Use at least 12 characters."));
    assert!(g.body.contains("Please fill this in."));
    assert!(g.body.contains("aria-invalid=\"true\""));
    assert!(!b.cookies.contains_key("souk_session"));
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no account was made");

    // Registering signs in and goes to `next`.
    let g = post_from(
        &mut b,
        "/register",
        "/register",
        &[
            ("name", "Ada Lovelace"),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("next", "/account/orders"),
        ],
    )
    .await;
    assert_see_other(&g, "/account/orders");
    let session = b.cookies.get("souk_session").cloned().expect("signed in");
    let set = g
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("souk_session="))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"));
    let acct = b.get("/account").await;
    acct.assert_page("account");
    assert!(acct.body.contains("ada@example.com"));
    assert_eq!(
        input_value(&acct.body, "name").as_deref(),
        Some("Ada Lovelace")
    );
    assert!(acct.body.contains("Not verified yet"));
    // Signed in, the sign-in page goes to the account.
    assert_see_other(&b.get("/signin").await, "/account");

    // The same email again is refused, kindly.
    let mut other = Browser::new(&app);
    let g = post_from(
        &mut other,
        "/register",
        "/register",
        &[
            ("name", "Eve"),
            ("email", "ADA@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("already exists"));

    sign_out(&mut b).await;
    assert_see_other(&b.get("/account").await, "/signin?next=%2Faccount");
    // The old session cookie is dead even if replayed.
    b.cookies.insert("souk_session".into(), session);
    assert_eq!(b.get("/account").await.status, StatusCode::SEE_OTHER);
    b.cookies.remove("souk_session");

    // A wrong password: the form again, with the email kept, and no session.
    let g = post_from(
        &mut b,
        "/signin",
        "/signin",
        &[
            ("email", "ada@example.com"),
            ("password", "wrong password here"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    assert_clean(&g.body, "bad sign-in");
    assert!(
        g.body
            .contains("The email address or the password is not right.")
    );
    assert_eq!(
        input_value(&g.body, "email").as_deref(),
        Some("ada@example.com")
    );
    assert!(!b.cookies.contains_key("souk_session"));

    // `next` leads only to local paths; anything else goes home.
    for (next, to) in [
        ("https://evil.example/x", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/checkout", "/checkout"),
    ] {
        let g = post_from(
            &mut b,
            "/signin",
            "/signin",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
        assert_see_other(&g, to);
        sign_out(&mut b).await;
    }
    let page = b.get("/signin?next=https://evil.example").await;
    assert_eq!(
        input_value(&page.body, "next"),
        None,
        "a foreign next is dropped"
    );
    let page = b.get("/signin?next=/checkout").await;
    assert_eq!(
        input_value(&page.body, "next").as_deref(),
        Some("/checkout")
    );
    assert!(page.body.contains("href=\"/register?next=%2Fcheckout\""));
}

#[tokio::test]
async fn csrf_is_required_and_a_refused_form_changes_nothing() {
    let app = app().await;
    let mut b = Browser::new(&app);
    register(&mut b, "Grace", "grace@example.com").await;
    for form in [
        vec![("name", "Mallory")],
        vec![("csrf", "forged"), ("name", "Mallory")],
    ] {
        let g = b.post("/account", &form).await;
        assert_eq!(g.status, StatusCode::FORBIDDEN);
        assert!(g.body.starts_with("<!doctype html>"));
    }
    // Another visitor's token is not this one's.
    let mut eve = Browser::new(&app);
    let evil = eve.get("/register").await.csrf();
    let g = b
        .post("/account", &[("csrf", &evil), ("name", "Mallory")])
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN);
    let g = b.post("/signout", &[]).await;
    assert_eq!(g.status, StatusCode::FORBIDDEN);
    assert!(b.cookies.contains_key("souk_session"), "still signed in");
    let acct = b.get("/account").await;
    assert_eq!(input_value(&acct.body, "name").as_deref(), Some("Grace"));
    let g = b
        .post(
            "/signin",
            &[("email", "grace@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn profile_and_addresses_are_edited_and_bad_input_changes_nothing() {
    let app = app().await;
    let mut b = Browser::new(&app);
    register(&mut b, "Grace", "grace@example.com").await;

    let g = post_from(
        &mut b,
        "/account",
        "/account",
        &[
            ("name", "Grace Hopper"),
            ("phone", "+1 555 123 4567"),
            ("locale", "fr"),
            ("marketing_consent", "yes"),
        ],
    )
    .await;
    assert_see_other(&g, "/account");
    let acct = b.get("/account").await;
    acct.assert_page("profile saved");
    assert!(acct.body.contains("Your profile is saved."));
    assert_eq!(
        input_value(&acct.body, "phone").as_deref(),
        Some("+1 555 123 4567")
    );
    assert!(acct.body.contains("<option value=\"fr\" selected>"));
    assert!(
        acct.body
            .contains("name=\"marketing_consent\" type=\"checkbox\" value=\"yes\" checked")
    );

    let g = post_from(
        &mut b,
        "/account",
        "/account",
        &[("name", "Grace"), ("phone", "call me"), ("locale", "EN")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&g.body, "bad profile");
    assert!(g.body.contains("Enter a phone number like"));
    assert!(g.body.contains("Choose a language from the list."));
    let acct = b.get("/account").await;
    assert_eq!(
        input_value(&acct.body, "name").as_deref(),
        Some("Grace Hopper")
    );
    assert!(
        !acct.body.contains("Your profile is saved."),
        "a flash shows once"
    );

    // Addresses: a bad one is refused whole, a good one added, edited, deleted.
    let home = [
        ("label", "Home"),
        ("name", "Grace Hopper"),
        ("line1", "1 Navy Way"),
        ("line2", ""),
        ("city", "Arlington"),
        ("region", "VA"),
        ("postal_code", "22201"),
        ("country", "us"),
    ];
    let mut bad = home.to_vec();
    bad[2] = ("line1", "");
    bad[7] = ("country", "USA");
    let g = post_from(
        &mut b,
        "/account/addresses/new",
        "/account/addresses/new",
        &bad,
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("Please fill this in."));
    assert!(g.body.contains("Use the two-letter country code"));
    assert_eq!(input_value(&g.body, "city").as_deref(), Some("Arlington"));
    assert!(
        b.get("/account")
            .await
            .body
            .contains("no saved address yet")
    );

    let g = post_from(
        &mut b,
        "/account/addresses/new",
        "/account/addresses/new",
        &home,
    )
    .await;
    assert_see_other(&g, "/account#addresses");
    let acct = b.get("/account").await;
    assert!(acct.body.contains("1 Navy Way"));
    assert!(
        acct.body.contains("US</address>"),
        "the country code is upper-cased"
    );

    let edit = b.get("/account/addresses/0").await;
    edit.assert_page("edit address");
    assert_eq!(
        input_value(&edit.body, "line1").as_deref(),
        Some("1 Navy Way")
    );
    let mut moved = home.to_vec();
    moved[2] = ("line1", "2 Harbor Rd");
    let g = post_from(
        &mut b,
        "/account/addresses/0",
        "/account/addresses/0",
        &moved,
    )
    .await;
    assert_see_other(&g, "/account#addresses");
    let acct = b.get("/account").await;
    assert!(acct.body.contains("2 Harbor Rd") && !acct.body.contains("1 Navy Way"));
    assert_eq!(
        b.get("/account/addresses/7").await.status,
        StatusCode::NOT_FOUND
    );

    let g = post_from(&mut b, "/account", "/account/addresses/0/delete", &[]).await;
    assert_see_other(&g, "/account#addresses");
    assert!(
        b.get("/account")
            .await
            .body
            .contains("no saved address yet")
    );
    let g = post_from(&mut b, "/account", "/account/addresses/0/delete", &[]).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);

    let n = b.get("/account/notifications").await;
    n.assert_page("notifications");
    assert!(n.body.contains("comes soon"));
}
