//! Proving a mailbox, as pages: the forgotten-password form, the reset page the mailed
//! link opens (`/reset-password` and `/account/reset-password`, both open to guests), and
//! email verification. Answers never tell whether an address has an account.

use super::auth_pages::Links;
use super::auth_pages::links;
use super::{Empty, FormErrors, done, error_sentence, form_errors, render_status};
use crate::app::AppState;
use crate::auth::ClientInfo;
use crate::error::Error;
use crate::services::users::recovery;
use crate::web::{CsrfForm, Flash, Page, PageResult, SignedIn, redirect};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
        // The address the reset mail links to (the users service writes it).
        .route("/account/reset-password", get(reset_page))
        .route("/account/verify-email", get(verify_page).post(verify))
        .route("/account/verify-email/resend", post(resend_verification))
}

// ---------------------------------------------------------------------------------------
// Forgotten password

#[derive(Serialize)]
struct ForgotPage {
    email: String,
    links: Links,
    errors: FormErrors,
    form_error: Option<String>,
}

async fn forgot_page(State(state): State<AppState>, page: Page) -> PageResult {
    let ctx = ForgotPage {
        email: String::new(),
        links: links(None),
        errors: FormErrors::new(),
        form_error: None,
    };
    render_status(
        &state,
        &page,
        "storefront/auth/forgot.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotBody {
    #[serde(default)]
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<ForgotBody>,
) -> PageResult {
    let input = recovery::ForgotInput {
        email: body.email.clone(),
    };
    let e = match recovery::forgot_password(&state, input, &client).await {
        // The same answer whether or not the address has an account.
        Ok(()) => {
            return Ok(redirect(
                &state,
                "/forgot-password",
                Flash::info(state.web.i18n.t("account.forgot.sent")),
            ));
        }
        Err(e) => e,
    };
    let mut ctx = ForgotPage {
        email: body.email,
        links: links(None),
        errors: FormErrors::new(),
        form_error: None,
    };
    let status = match &e {
        Error::Validation(fields) => {
            ctx.errors = form_errors(&state, fields, "", &[]);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::RateLimited { .. } => {
            ctx.form_error = Some(error_sentence(&state, &e));
            StatusCode::TOO_MANY_REQUESTS
        }
        _ => return Err(e.into()),
    };
    render_status(&state, &page, "storefront/auth/forgot.html", ctx, status)
}

// ---------------------------------------------------------------------------------------
// Reset password (from the mailed link)

#[derive(Deserialize, Default)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Serialize)]
struct ResetPage {
    token: String,
    links: Links,
    errors: FormErrors,
    form_error: Option<String>,
}

async fn reset_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<TokenQuery>,
) -> PageResult {
    let token = q.token.unwrap_or_default();
    let form_error = token
        .is_empty()
        .then(|| state.web.i18n.t("account.reset.bad_link"));
    let ctx = ResetPage {
        token,
        links: links(None),
        errors: FormErrors::new(),
        form_error,
    };
    render_status(
        &state,
        &page,
        "storefront/auth/reset.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn reset(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<ResetBody>,
) -> PageResult {
    let mut ctx = ResetPage {
        token: body.token.clone(),
        links: links(None),
        errors: FormErrors::new(),
        form_error: None,
    };
    if body.password != body.password_confirm {
        ctx.errors.insert(
            "password_confirm".into(),
            state.web.i18n.t("account.errors.password_mismatch"),
        );
    } else {
        let input = recovery::ResetInput {
            token: body.token,
            password: body.password,
        };
        match recovery::reset_password(&state, input, &client).await {
            Ok(()) => {
                return Ok(redirect(
                    &state,
                    "/signin",
                    Flash::success(state.web.i18n.t("account.reset.done")),
                ));
            }
            Err(Error::Validation(fields)) => {
                if fields.iter().any(|f| f.field == "token") {
                    ctx.form_error = Some(state.web.i18n.t("account.reset.bad_link"));
                }
                ctx.errors = form_errors(&state, &fields, "", &[]);
                ctx.errors.remove("token");
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_status(
        &state,
        &page,
        "storefront/auth/reset.html",
        ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

// ---------------------------------------------------------------------------------------
// Email verification: the mailed link shows a button, so a mail scanner that fetches the
// link does not use it up.

#[derive(Serialize)]
struct VerifyPage {
    token: String,
    form_error: Option<String>,
}

async fn verify_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<TokenQuery>,
) -> PageResult {
    let token = q.token.unwrap_or_default();
    let form_error = token
        .is_empty()
        .then(|| state.web.i18n.t("account.verify.bad_link"));
    let ctx = VerifyPage { token, form_error };
    render_status(
        &state,
        &page,
        "storefront/auth/verify.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    #[serde(default)]
    token: String,
}

async fn verify(
    State(state): State<AppState>,
    page: Page,
    CsrfForm(body): CsrfForm<VerifyBody>,
) -> PageResult {
    let input = recovery::VerifyEmailInput {
        token: body.token.clone(),
    };
    match recovery::verify_email(&state, input).await {
        Ok(()) => {
            let to = if page.viewer.principal.is_some() {
                "/account"
            } else {
                "/signin"
            };
            Ok(done(&state, to, "account.verify.done"))
        }
        Err(Error::Validation(fields)) => {
            // The only field is the token: whatever is wrong, the link is.
            let form_error =
                (!fields.is_empty()).then(|| state.web.i18n.t("account.verify.bad_link"));
            let ctx = VerifyPage {
                token: body.token,
                form_error,
            };
            render_status(
                &state,
                &page,
                "storefront/auth/verify.html",
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(e.into()),
    }
}

async fn resend_verification(
    State(state): State<AppState>,
    SignedIn(_page, p): SignedIn,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    Ok(match recovery::resend_verification(&state, &p).await {
        Ok(()) => done(&state, "/account", "account.verify.resent"),
        Err(e @ (Error::Conflict { .. } | Error::RateLimited { .. })) => {
            redirect(&state, "/account", Flash::error(error_sentence(&state, &e)))
        }
        Err(e) => return Err(e.into()),
    })
}
