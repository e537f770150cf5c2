//! The user service's JSON routes under /api/v1 (auth, profile, API keys, admin, setup)
//! and the OAuth2 token endpoint, which speaks RFC 6749 form bodies and error shapes.
//! Handlers only extract, call the service and shape the answer.

use super::api_keys::{ApiKeyView, CreatedKey};
use super::flows::{LoginOutcome, SessionView, TokenPair};
use super::model::UserView;
use super::store::AuditEntry;
use super::{admin, api_keys, flows, mfa, recovery};
use crate::app::AppState;
use crate::auth::{Admin, ApiKeyId, ClientInfo, Principal, SessionId, UserId};
use crate::error::{Error, Result};
use crate::http::{Json, Path, Query};
use crate::services::{Page, PageQuery};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/mfa/verify", post(mfa_verify))
        .route("/auth/mfa/setup", post(mfa_setup))
        .route("/auth/mfa/enable", post(mfa_enable))
        .route("/auth/mfa/disable", post(mfa_disable))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/sessions", get(sessions))
        .route("/auth/sessions/{id}", delete(end_session))
        .route("/auth/forgot-password", post(forgot_password))
        .route("/auth/reset-password", post(reset_password))
        .route("/auth/verify-email", post(verify_email))
        .route("/auth/resend-verification", post(resend_verification))
        .route("/auth/token", post(oauth_token))
        .route("/users/profile", get(profile).put(update_profile))
        .route("/users/account", delete(delete_account))
        .route("/users/password", put(change_password))
        .route("/users/{id}", get(admin_get_user))
        .route("/admin/users", get(admin_list_users))
        .route("/admin/users/{id}", get(admin_get_user))
        .route("/admin/users/{id}/role", put(admin_set_role))
        .route("/admin/users/{id}/lock", post(admin_lock))
        .route("/admin/users/{id}/unlock", post(admin_unlock))
        .route("/admin/audit", get(admin_audit))
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", delete(revoke_key))
        .route("/setup/admin", post(setup_admin))
}

/// Responses carrying credentials must never be cached (RFC 6749 §5.1).
fn no_store<T: IntoResponse>(body: T) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<super::RegisterInput>,
) -> Result<(StatusCode, Json<UserView>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::register(&state, input, &client).await?),
    ))
}

async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<flows::LoginInput>,
) -> Result<Response> {
    let out: LoginOutcome = flows::login(&state, input, &client).await?;
    Ok(no_store(Json(out)))
}

async fn mfa_verify(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<flows::MfaVerifyInput>,
) -> Result<Response> {
    Ok(no_store(Json(
        flows::verify_mfa(&state, input, &client).await?,
    )))
}

async fn mfa_setup(State(state): State<AppState>, p: Principal) -> Result<Response> {
    Ok(no_store(Json(mfa::setup(&state, &p).await?)))
}

async fn mfa_enable(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<mfa::EnableInput>,
) -> Result<Response> {
    Ok(no_store(Json(mfa::enable(&state, &p, input).await?)))
}

async fn mfa_disable(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<mfa::DisableInput>,
) -> Result<StatusCode> {
    mfa::disable(&state, &p, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<flows::RefreshInput>,
) -> Result<Response> {
    let pair: TokenPair = flows::refresh(&state, &input.refresh_token, &client).await?;
    Ok(no_store(Json(pair)))
}

async fn logout(State(state): State<AppState>, p: Principal) -> Result<StatusCode> {
    flows::logout(&state, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sessions(State(state): State<AppState>, p: Principal) -> Result<Json<Page<SessionView>>> {
    Ok(Json(Page {
        items: flows::sessions(&state, &p)?,
        next_cursor: None,
    }))
}

async fn end_session(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<SessionId>,
) -> Result<StatusCode> {
    flows::revoke_session(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<recovery::ForgotInput>,
) -> Result<StatusCode> {
    recovery::forgot_password(&state, input, &client).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<recovery::ResetInput>,
) -> Result<StatusCode> {
    recovery::reset_password(&state, input, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_email(
    State(state): State<AppState>,
    Json(input): Json<recovery::VerifyEmailInput>,
) -> Result<StatusCode> {
    recovery::verify_email(&state, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resend_verification(State(state): State<AppState>, p: Principal) -> Result<StatusCode> {
    recovery::resend_verification(&state, &p).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn profile(State(state): State<AppState>, p: Principal) -> Result<Json<UserView>> {
    Ok(Json(super::profile(&state, &p)?))
}

async fn update_profile(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<super::ProfileInput>,
) -> Result<Json<UserView>> {
    Ok(Json(super::update_profile(&state, &p, input).await?))
}

async fn delete_account(
    State(state): State<AppState>,
    p: Principal,
    client: ClientInfo,
    Json(input): Json<super::DeleteAccountInput>,
) -> Result<StatusCode> {
    super::delete_account(&state, &p, input, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{current_password, new_password}`: every other session of the account ends.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<PasswordChange>,
) -> Result<StatusCode> {
    super::password::change(&state, &p, &input.current_password, &input.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn admin_get_user(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<UserId>,
) -> Result<Json<UserView>> {
    Ok(Json(admin::get_user(&state, &p, id)?))
}

async fn admin_list_users(
    State(state): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<admin::UserQuery>,
) -> Result<Json<Page<UserView>>> {
    Ok(Json(admin::list_users(&state, &p, q)?))
}

async fn admin_set_role(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<UserId>,
    Json(input): Json<admin::RoleInput>,
) -> Result<Json<UserView>> {
    Ok(Json(admin::set_role(&state, &p, id, input).await?))
}

async fn admin_lock(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<UserId>,
) -> Result<Json<UserView>> {
    Ok(Json(admin::set_locked(&state, &p, id, true).await?))
}

async fn admin_unlock(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<UserId>,
) -> Result<Json<UserView>> {
    Ok(Json(admin::set_locked(&state, &p, id, false).await?))
}

async fn admin_audit(
    State(state): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<AuditEntry>>> {
    Ok(Json(admin::audit_page(&state, &p, q)?))
}

async fn create_key(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<api_keys::CreateInput>,
) -> Result<Response> {
    let created: CreatedKey = api_keys::create(&state, &p, input).await?;
    let mut r = no_store(Json(created));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

async fn list_keys(State(state): State<AppState>, p: Principal) -> Result<Json<Page<ApiKeyView>>> {
    Ok(Json(Page {
        items: api_keys::list(&state, &p)?,
        next_cursor: None,
    }))
}

async fn revoke_key(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ApiKeyId>,
) -> Result<StatusCode> {
    api_keys::revoke(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn setup_admin(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(input): Json<admin::SetupAdminInput>,
) -> Result<(StatusCode, Json<UserView>)> {
    Ok((
        StatusCode::CREATED,
        Json(admin::setup_admin(&state, input, &client).await?),
    ))
}

// --- OAuth2 token endpoint (RFC 6749) ---

/// An RFC 6749 §5.2 error: `{error, error_description}`, 400 (401 for a bad client).
fn oauth_error(code: &'static str, description: &str) -> Response {
    let status = if code == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = serde_json::json!({"error": code, "error_description": description});
    let mut r = no_store((status, axum::Json(body)));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"souk\""),
        );
    }
    r
}

/// Client credentials from HTTP Basic (preferred by RFC 6749 §2.3.1) or the form.
fn client_secret(
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Option<(Option<String>, String)> {
    use base64::Engine;
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, rest)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (id, secret) = text.split_once(':')?;
        let id = form_urlencoded::parse(id.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next();
        let secret = form_urlencoded::parse(secret.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()?;
        return Some((id, secret));
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some((get("client_id"), get("client_secret")?))
}

async fn oauth_token(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !form_type {
        return oauth_error(
            "invalid_request",
            "send the body as application/x-www-form-urlencoded",
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // RFC 6749 §3.2: parameters must not be repeated.
    for (i, (k, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(k2, _)| k2 == k) {
            return oauth_error("invalid_request", &format!("parameter {k} is repeated"));
        }
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("grant_type") {
        None => oauth_error("invalid_request", "grant_type is required"),
        Some("refresh_token") => {
            let Some(rt) = get("refresh_token") else {
                return oauth_error("invalid_request", "refresh_token is required");
            };
            match flows::refresh(&state, rt, &client).await {
                Ok(pair) => no_store(axum::Json(pair)),
                Err(Error::Unauthorized(m)) => oauth_error("invalid_grant", &m),
                Err(e) => e.into_response(),
            }
        }
        Some("client_credentials") => {
            let Some((client_id, secret)) = client_secret(&headers, &form) else {
                return oauth_error("invalid_client", "client authentication is required");
            };
            // When a client_id is given it must be the key's visible prefix.
            if let Some(id) = client_id.filter(|id| !id.is_empty())
                && !secret.starts_with(&format!("{id}_"))
            {
                return oauth_error("invalid_client", "client_id does not match the secret");
            }
            match flows::client_credentials(&state, &secret, &client).await {
                Ok((access, ttl)) => no_store(axum::Json(serde_json::json!({
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": ttl,
                }))),
                Err(Error::Unauthorized(m)) => oauth_error("invalid_client", &m),
                Err(e) => e.into_response(),
            }
        }
        Some(_) => oauth_error(
            "unsupported_grant_type",
            "supported: refresh_token, client_credentials",
        ),
    }
}
