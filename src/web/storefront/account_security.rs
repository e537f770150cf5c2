//! /account/security: change the password, turn MFA on (QR code drawn here as inline SVG
//! from the pending secret, recovery codes shown once) and off, and the list of signed-in
//! sessions with "sign out this session". Secrets never go into a URL or a flash cookie.

use super::{Empty, FormErrors, done, error_sentence, form_errors, render_status, when_str};
use crate::app::AppState;
use crate::auth::{Principal, SessionId, totp};
use crate::error::{Error, Result};
use crate::services::users::{self, flows, mfa};
use crate::web::{CsrfForm, Flash, Page, PageResult, SignedIn, WebError, redirect};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/security", get(security_page))
        .route("/account/security/password", post(change_password_post))
        .route("/account/security/mfa", get(mfa_setup_page))
        .route("/account/security/mfa/setup", post(mfa_setup))
        .route("/account/security/mfa/enable", post(mfa_enable))
        .route("/account/security/mfa/disable", post(mfa_disable))
        .route("/account/security/sessions/{id}/end", post(end_session))
}

/// The issuer authenticator apps show next to the account (the API's setup uses the same).
const ISSUER: &str = "Souk";

#[derive(Serialize)]
struct MfaState {
    enabled: bool,
    /// Setup started but not confirmed with a code.
    pending: bool,
    recovery_left: usize,
}

#[derive(Serialize)]
struct SessionRow {
    id: String,
    device: String,
    ip: String,
    created: String,
    last_seen: String,
    current: bool,
    api_key: bool,
}

#[derive(Serialize)]
struct SecurityPage {
    section: &'static str,
    mfa: MfaState,
    sessions: Vec<SessionRow>,
    pw_errors: FormErrors,
    pw_form_error: Option<String>,
    mfa_errors: FormErrors,
    mfa_form_error: Option<String>,
}

fn security_ctx(state: &AppState, p: &Principal) -> Result<SecurityPage, WebError> {
    let u = users::current_user(state, p)?;
    let sessions = flows::sessions(state, p)?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            device: device(state, s.user_agent.as_deref()),
            ip: s.ip.unwrap_or_default(),
            created: when_str(&s.created_at),
            last_seen: when_str(&s.last_seen_at),
            current: s.current,
            api_key: s.via_api_key.is_some(),
        })
        .collect();
    Ok(SecurityPage {
        section: "security",
        mfa: MfaState {
            enabled: u.mfa.enabled(),
            pending: !u.mfa.enabled() && u.mfa.pending_secret.is_some(),
            recovery_left: u.mfa.recovery_hashes.len(),
        },
        sessions,
        pw_errors: FormErrors::new(),
        pw_form_error: None,
        mfa_errors: FormErrors::new(),
        mfa_form_error: None,
    })
}

async fn security_page(State(state): State<AppState>, SignedIn(page, p): SignedIn) -> PageResult {
    let ctx = security_ctx(&state, &p)?;
    render_status(
        &state,
        &page,
        "storefront/account/security.html",
        ctx,
        StatusCode::OK,
    )
}

fn refused(state: &AppState, page: &Page, ctx: SecurityPage) -> PageResult {
    render_status(
        state,
        page,
        "storefront/account/security.html",
        ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// "Firefox on Linux" from a user agent, roughly: enough to recognise one's own devices.
fn device(state: &AppState, ua: Option<&str>) -> String {
    let i18n = &state.web.i18n;
    let Some(ua) = ua.filter(|u| !u.trim().is_empty()) else {
        return i18n.t("account.sessions.unknown_device");
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match (browser, os) {
        (Some(b), Some(o)) => {
            i18n.t_with("account.sessions.device_on", &[("browser", b), ("os", o)])
        }
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Password

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

async fn change_password_post(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<PasswordBody>,
) -> PageResult {
    let mut ctx = security_ctx(&state, &p)?;
    if body.new_password != body.new_password_confirm {
        ctx.pw_errors.insert(
            "new_password_confirm".into(),
            state.web.i18n.t("account.errors.password_mismatch"),
        );
        return refused(&state, &page, ctx);
    }
    match users::password::change(&state, &p, &body.current_password, &body.new_password).await {
        Ok(()) => Ok(done(
            &state,
            "/account/security",
            "account.security.password_changed",
        )),
        Err(Error::Validation(fields)) => {
            ctx.pw_errors = form_errors(&state, &fields, "", &[]);
            refused(&state, &page, ctx)
        }
        Err(e @ Error::RateLimited { .. }) => {
            ctx.pw_form_error = Some(error_sentence(&state, &e));
            render_status(
                &state,
                &page,
                "storefront/account/security.html",
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// MFA

/// An inline SVG QR code of `text`, labelled for screen readers (the secret is also shown
/// as text for those who cannot scan).
fn qr_svg(text: &str, label: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let drawn = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // The renderer writes a standalone document; inline SVG starts at the element.
    let start = drawn.find("<svg")?;
    let label = label
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    Some(drawn[start..].replacen(
        "<svg ",
        &format!("<svg class=\"qr\" role=\"img\" aria-label=\"{label}\" focusable=\"false\" "),
        1,
    ))
}

/// `JBSW Y3DP EHPK 3PXP`: the secret in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
struct SetupPage {
    section: &'static str,
    qr_svg: String,
    secret: String,
    secret_grouped: String,
    errors: FormErrors,
    form_error: Option<String>,
}

/// The setup page for the pending secret, or a redirect when there is nothing to set up.
fn setup_ctx(state: &AppState, p: &Principal) -> Result<Option<SetupPage>, WebError> {
    let u = users::current_user(state, p)?;
    if u.mfa.enabled() {
        return Ok(None);
    }
    let Some(secret) = u
        .mfa
        .pending_secret
        .as_deref()
        .and_then(|s| hex::decode(s).ok())
    else {
        return Ok(None);
    };
    let b32 = totp::secret_base32(&secret);
    let uri = totp::otpauth_uri(&secret, ISSUER, u.email.as_str());
    let qr = qr_svg(&uri, &state.web.i18n.t("account.mfa.qr_label"))
        .ok_or_else(|| WebError::internal("QR code could not be drawn"))?;
    Ok(Some(SetupPage {
        section: "security",
        qr_svg: qr,
        secret_grouped: grouped(&b32),
        secret: b32,
        errors: FormErrors::new(),
        form_error: None,
    }))
}

async fn mfa_setup_page(State(state): State<AppState>, SignedIn(page, p): SignedIn) -> PageResult {
    match setup_ctx(&state, &p)? {
        Some(ctx) => render_status(
            &state,
            &page,
            "storefront/account/mfa_setup.html",
            ctx,
            StatusCode::OK,
        ),
        None => Ok(crate::web::redirect_plain("/account/security")),
    }
}

async fn mfa_setup(
    State(state): State<AppState>,
    SignedIn(_page, p): SignedIn,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    match mfa::setup(&state, &p).await {
        // The page reads the pending secret back from the account.
        Ok(_) => Ok(crate::web::redirect_plain("/account/security/mfa")),
        Err(e @ Error::Conflict { .. }) => Ok(redirect(
            &state,
            "/account/security",
            Flash::error(error_sentence(&state, &e)),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    #[serde(default)]
    code: String,
}

#[derive(Serialize)]
struct RecoveryPage {
    section: &'static str,
    codes: Vec<String>,
}

/// Enabling answers with the recovery codes on this response itself (not after a
/// redirect): they exist only here, once, and must not pass through a cookie.
async fn mfa_enable(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<CodeBody>,
) -> PageResult {
    let input = mfa::EnableInput {
        code: body.code.trim().to_string(),
    };
    match mfa::enable(&state, &p, input).await {
        Ok(v) => {
            let ctx = RecoveryPage {
                section: "security",
                codes: v.recovery_codes,
            };
            render_status(
                &state,
                &page,
                "storefront/account/recovery_codes.html",
                ctx,
                StatusCode::OK,
            )
        }
        Err(Error::Validation(fields)) => {
            let Some(mut ctx) = setup_ctx(&state, &p)? else {
                return Ok(crate::web::redirect_plain("/account/security"));
            };
            ctx.errors = form_errors(&state, &fields, "", &[]);
            render_status(
                &state,
                &page,
                "storefront/account/mfa_setup.html",
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e @ Error::Conflict { .. }) => Ok(redirect(
            &state,
            "/account/security",
            Flash::error(error_sentence(&state, &e)),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

async fn mfa_disable(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<DisableBody>,
) -> PageResult {
    let input = mfa::DisableInput {
        password: body.password,
        code: body.code,
    };
    match mfa::disable(&state, &p, input).await {
        Ok(()) => Ok(done(&state, "/account/security", "account.mfa.disabled")),
        Err(Error::Validation(fields)) => {
            let mut ctx = security_ctx(&state, &p)?;
            ctx.mfa_errors = form_errors(&state, &fields, "", &[]);
            refused(&state, &page, ctx)
        }
        Err(e @ Error::Conflict { .. }) => Ok(redirect(
            &state,
            "/account/security",
            Flash::error(error_sentence(&state, &e)),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Sessions

async fn end_session(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let sid: SessionId = id.parse().map_err(|_| WebError::not_found())?;
    if Some(sid) == p.session_id {
        // Ending the session this browser uses is signing out.
        return Ok(crate::web::session::sign_out(&state, &page.viewer).await?);
    }
    flows::revoke_session(&state, &p, sid).await?;
    Ok(done(
        &state,
        "/account/security#sessions",
        "account.sessions.ended",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_inline_svg_with_a_label() {
        let svg = qr_svg(
            "otpauth://totp/Souk:a@b.example?secret=JBSWY3DP",
            "Scan <me>",
        )
        .unwrap();
        assert!(svg.starts_with("<svg class=\"qr\" role=\"img\" aria-label=\"Scan &lt;me>\""));
        assert!(!svg.contains("<?xml"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(grouped("ABCDEF"), "ABCD EF");
    }
}
