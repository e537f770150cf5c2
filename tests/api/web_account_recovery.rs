//! Forgotten password and email verification through the pages, the links read from the
//! mail file sink as a person would read them from their inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::users::{self, PASSWORD, token_from_mail};
use crate::web_account::{app, assert_see_other, post_from, register, sign_in, sign_out};
use crate::web_client::{Browser, input_value};
use reqwest::StatusCode;

#[tokio::test]
async fn forgotten_password_is_reset_through_the_mailed_link() {
    let app = app().await;
    let mut b = Browser::new(&app);
    register(&mut b, "Forgetful", "forgetful@example.com").await;
    sign_out(&mut b).await;
    let before = users::mails(&app).len();

    // Unknown and known addresses get the same answer; only the known one gets mail.
    for email in ["ghost@example.com", "Forgetful@Example.com"] {
        let g = post_from(
            &mut b,
            "/forgot-password",
            "/forgot-password",
            &[("email", email)],
        )
        .await;
        assert_see_other(&g, "/forgot-password");
        let page = b.get("/forgot-password").await;
        assert!(
            page.body
                .contains("a link to reset its password is on its way")
        );
    }
    let g = post_from(
        &mut b,
        "/forgot-password",
        "/forgot-password",
        &[("email", "nope")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("Enter an email address"));
    let mails = users::mails(&app);
    assert!(mails.len() > before);
    let token = token_from_mail(&app, "forgetful@example.com", "/account/reset-password");

    let page = b
        .get(&format!("/account/reset-password?token={token}"))
        .await;
    page.assert_page("reset");
    assert_eq!(
        input_value(&page.body, "token").as_deref(),
        Some(token.as_str())
    );
    let from = format!("/account/reset-password?token={token}");
    let g = post_from(
        &mut b,
        &from,
        "/reset-password",
        &[
            ("token", &token),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("Use at least 12 characters."));
    let new_password = "a brand new passphrase";
    let g = post_from(
        &mut b,
        &from,
        "/reset-password",
        &[
            ("token", &token),
            ("password", new_password),
            ("password_confirm", "other"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    let g = post_from(
        &mut b,
        &from,
        "/reset-password",
        &[
            ("token", &token),
            ("password", new_password),
            ("password_confirm", new_password),
        ],
    )
    .await;
    assert_see_other(&g, "/signin");
    assert!(
        b.get("/signin")
            .await
            .body
            .contains("Your password has been changed.")
    );

    // The link works once; the old password is gone, the new one works.
    let g = post_from(
        &mut b,
        &from,
        "/reset-password",
        &[
            ("token", &token),
            ("password", new_password),
            ("password_confirm", new_password),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("invalid, used or expired"));
    let g = post_from(
        &mut b,
        "/signin",
        "/signin",
        &[("email", "forgetful@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    sign_in(&mut b, "forgetful@example.com", new_password).await;

    // The verification link from the welcome mail, through its confirm button.
    let token = token_from_mail(&app, "forgetful@example.com", "/account/verify-email");
    let from = format!("/account/verify-email?token={token}");
    let g = post_from(
        &mut b,
        &from,
        "/account/verify-email",
        &[("token", "ve_wrong")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    // (A reset already proved the mailbox; the link is still honoured once.)
    let g = post_from(&mut b, &from, "/account/verify-email", &[("token", &token)]).await;
    assert_see_other(&g, "/account");
    let acct = b.get("/account").await;
    assert!(acct.body.contains("Verified"));
}
