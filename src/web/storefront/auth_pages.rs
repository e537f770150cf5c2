//! Signing in and out, registering and the MFA challenge, as pages (forgotten passwords
//! and email verification are in `account_recovery`). Sessions are the users service's own (`session::sign_in`);
//! the MFA step's token travels in a short-lived HttpOnly cookie, never in the page.
//! `?next=` is honoured only for local paths, so no link here can send anyone elsewhere.

use super::{Empty, FormErrors, error_sentence, form_errors, render_status};
use crate::app::AppState;
use crate::auth::ClientInfo;
use crate::error::Error;
use crate::services::users::{
    self, RegisterInput,
    flows::{self, LoginInput, LoginOutcome, MfaVerifyInput},
};
use crate::web::session::{self, read_cookie, redirect_with_cookies};
use crate::web::{CsrfForm, Flash, Page, PageResult, redirect, redirect_plain, urlencode};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

/// Holds the MFA step's token between the password and the code (HttpOnly, minutes).
const MFA_COOKIE: &str = "souk_mfa";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signin", get(signin_page).post(signin))
        .route("/signin/mfa", get(mfa_page).post(mfa_verify))
        .route("/register", get(register_page).post(register))
        .route("/signout", post(signout))
}

/// `?next=` as given: kept only when it is a local path (else dropped, so the default
/// destination applies).
pub(crate) fn clean_next(raw: Option<&str>) -> Option<String> {
    let n = raw?.trim();
    if n.is_empty() || n.len() > 2048 || n.contains('\\') {
        return None;
    }
    let safe = session::safe_next(Some(n));
    (safe == n).then_some(safe)
}

/// `path?next=…` when there is a next, else `path`.
pub(crate) fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => format!("{path}?next={}", urlencode(n)),
        None => path.to_string(),
    }
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// The links every auth page offers, carrying `next` along.
#[derive(Serialize)]
pub(crate) struct Links {
    signin: String,
    register: String,
    forgot: String,
}

pub(crate) fn links(next: Option<&str>) -> Links {
    Links {
        signin: with_next("/signin", next),
        register: with_next("/register", next),
        forgot: "/forgot-password".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Sign in

#[derive(Serialize)]
struct SigninPage {
    email: String,
    next: String,
    links: Links,
    errors: FormErrors,
    form_error: Option<String>,
}

fn signin_ctx(email: String, next: Option<&str>) -> SigninPage {
    SigninPage {
        email,
        next: next.unwrap_or_default().to_string(),
        links: links(next),
        errors: FormErrors::new(),
        form_error: None,
    }
}

async fn signin_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let next = clean_next(q.next.as_deref());
    if page.viewer.principal.is_some() {
        return Ok(redirect_plain(next.as_deref().unwrap_or("/account")));
    }
    let ctx = signin_ctx(String::new(), next.as_deref());
    render_status(
        &state,
        &page,
        "storefront/auth/signin.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigninBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// How a refused sign-in (or MFA step) is told: its status and its sentence.
fn refusal(state: &AppState, e: &Error, unauthorized_key: &str) -> Option<(StatusCode, String)> {
    let i18n = &state.web.i18n;
    Some(match e {
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, i18n.t(unauthorized_key)),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, i18n.t("account.errors.locked")),
        Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, error_sentence(state, e)),
        _ => return None,
    })
}

async fn signin(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<SigninBody>,
) -> PageResult {
    let next = clean_next(body.next.as_deref());
    let input = LoginInput {
        email: body.email.clone(),
        password: body.password,
    };
    let e = match flows::login(&state, input, &client).await {
        Ok(LoginOutcome::Tokens(pair)) => {
            return Ok(session::sign_in(&state, &page.viewer, &pair, next.as_deref()).await?);
        }
        Ok(LoginOutcome::MfaRequired { mfa_token, .. }) => {
            let ttl = state.config.auth.mfa_token_ttl_secs as i64;
            let c = session::cookie(&state, MFA_COOKIE, &mfa_token, Some(ttl));
            return Ok(redirect_with_cookies(
                &with_next("/signin/mfa", next.as_deref()),
                vec![c],
            ));
        }
        Err(e) => e,
    };
    let mut ctx = signin_ctx(body.email, next.as_deref());
    let status = match &e {
        Error::Validation(fields) => {
            ctx.errors = form_errors(&state, fields, "", &[]);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        other => {
            let Some((status, text)) = refusal(&state, other, "account.signin.bad_credentials")
            else {
                return Err(e.into());
            };
            ctx.form_error = Some(text);
            status
        }
    };
    render_status(&state, &page, "storefront/auth/signin.html", ctx, status)
}

// ---------------------------------------------------------------------------------------
// The MFA challenge

#[derive(Serialize)]
struct MfaPage {
    next: String,
    links: Links,
    errors: FormErrors,
    form_error: Option<String>,
}

fn mfa_expired(state: &AppState, next: Option<&str>) -> PageResult {
    Ok(redirect(
        state,
        &with_next("/signin", next),
        Flash::error(state.web.i18n.t("account.mfa.expired")),
    ))
}

async fn mfa_page(
    State(state): State<AppState>,
    page: Page,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let next = clean_next(q.next.as_deref());
    if read_cookie(&headers, MFA_COOKIE).is_none() {
        return mfa_expired(&state, next.as_deref());
    }
    let ctx = MfaPage {
        next: next.clone().unwrap_or_default(),
        links: links(next.as_deref()),
        errors: FormErrors::new(),
        form_error: None,
    };
    render_status(
        &state,
        &page,
        "storefront/auth/mfa.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: Option<String>,
}

async fn mfa_verify(
    State(state): State<AppState>,
    page: Page,
    headers: HeaderMap,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<MfaBody>,
) -> PageResult {
    let next = clean_next(body.next.as_deref());
    let Some(token) = read_cookie(&headers, MFA_COOKIE).map(String::from) else {
        return mfa_expired(&state, next.as_deref());
    };
    let mut ctx = MfaPage {
        next: next.clone().unwrap_or_default(),
        links: links(next.as_deref()),
        errors: FormErrors::new(),
        form_error: None,
    };
    if body.code.trim().is_empty() {
        ctx.errors
            .insert("code".into(), state.web.i18n.t("account.errors.required"));
        return render_status(
            &state,
            &page,
            "storefront/auth/mfa.html",
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let input = MfaVerifyInput {
        mfa_token: token,
        code: body.code,
    };
    match flows::verify_mfa(&state, input, &client).await {
        Ok(pair) => {
            let mut res = session::sign_in(&state, &page.viewer, &pair, next.as_deref()).await?;
            if let Ok(v) = session::clear_cookie(&state, MFA_COOKIE).parse() {
                res.headers_mut().append(axum::http::header::SET_COOKIE, v);
            }
            Ok(res)
        }
        Err(Error::Unauthorized(m)) if m.contains("expired") => {
            mfa_expired(&state, next.as_deref())
        }
        Err(e) => {
            let Some((status, text)) = refusal(&state, &e, "account.mfa.bad_code") else {
                return Err(e.into());
            };
            ctx.form_error = Some(text);
            render_status(&state, &page, "storefront/auth/mfa.html", ctx, status)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Register

#[derive(Serialize, Default)]
struct RegisterForm {
    name: String,
    email: String,
}

#[derive(Serialize)]
struct RegisterPage {
    form: RegisterForm,
    next: String,
    links: Links,
    errors: FormErrors,
    form_error: Option<String>,
}

async fn register_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let next = clean_next(q.next.as_deref());
    if page.viewer.principal.is_some() {
        return Ok(redirect_plain(next.as_deref().unwrap_or("/account")));
    }
    let ctx = RegisterPage {
        form: RegisterForm::default(),
        next: next.clone().unwrap_or_default(),
        links: links(next.as_deref()),
        errors: FormErrors::new(),
        form_error: None,
    };
    render_status(
        &state,
        &page,
        "storefront/auth/register.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    next: Option<String>,
}

async fn register(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<RegisterBody>,
) -> PageResult {
    let next = clean_next(body.next.as_deref());
    let mut ctx = RegisterPage {
        form: RegisterForm {
            name: body.name.clone(),
            email: body.email.clone(),
        },
        next: next.clone().unwrap_or_default(),
        links: links(next.as_deref()),
        errors: FormErrors::new(),
        form_error: None,
    };
    let refuse = |ctx: RegisterPage| {
        render_status(
            &state,
            &page,
            "storefront/auth/register.html",
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if body.password != body.password_confirm {
        ctx.errors.insert(
            "password_confirm".into(),
            state.web.i18n.t("account.errors.password_mismatch"),
        );
        return refuse(ctx);
    }
    let input = RegisterInput {
        email: body.email.clone(),
        password: body.password.clone(),
        name: body.name,
    };
    match users::register(&state, input, &client).await {
        Ok(_) => {}
        Err(Error::Validation(fields)) => {
            ctx.errors = form_errors(&state, &fields, "", &[]);
            return refuse(ctx);
        }
        Err(Error::Conflict {
            code: "email_taken",
            ..
        }) => {
            ctx.errors.insert(
                "email".into(),
                state.web.i18n.t("account.errors.email_taken"),
            );
            return refuse(ctx);
        }
        Err(e) => return Err(e.into()),
    }
    let login = LoginInput {
        email: body.email,
        password: body.password,
    };
    match flows::login(&state, login, &client).await? {
        LoginOutcome::Tokens(pair) => {
            Ok(session::sign_in(&state, &page.viewer, &pair, next.as_deref()).await?)
        }
        // A fresh account has no MFA; should it ever, the normal sign-in takes over.
        LoginOutcome::MfaRequired { .. } => {
            Ok(redirect_plain(&with_next("/signin", next.as_deref())))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sign out

async fn signout(
    State(state): State<AppState>,
    page: Page,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    Ok(session::sign_out(&state, &page.viewer).await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn next_is_kept_only_for_local_paths() {
        assert_eq!(clean_next(Some("/checkout")).as_deref(), Some("/checkout"));
        assert_eq!(
            clean_next(Some("/account/orders?x=1")).as_deref(),
            Some("/account/orders?x=1")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/a\\b",
            "javascript:alert(1)",
            "evil",
            "",
            "/\n/x",
        ] {
            assert_eq!(clean_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(clean_next(None), None);
        assert_eq!(
            with_next("/signin", Some("/checkout?a=1&b=2")),
            "/signin?next=%2Fcheckout%3Fa%3D1%26b%3D2"
        );
    }
}
