//! Payment, wallet and payment-method routes under /api/v1. Handlers parse, check who is
//! asking and call the commands in `flows` / `queries`; POSTs that move money go through
//! the `Idempotency-Key` guard. No table is opened here.

use super::flows::{self, InitiateInput};
use super::gateway::CardInput;
use super::model::{Method, PaymentId, PaymentMethodId, PaymentView, Purpose};
use super::queries;
use super::refunds::{self, RefundInput};
use super::{completions, saved_methods};
use crate::app::AppState;
use crate::auth::{Admin, ClientInfo, Principal};
use crate::error::{Error, Result};
use crate::http::idempotency::{self, parse_body};
use crate::http::{Json, Path, Query};
use crate::money::Money;
use crate::services::{Page, PageQuery};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments/initiate", post(initiate))
        .route("/payments/confirm", post(confirm))
        .route("/payments/hosted/callback", post(hosted_callback))
        .route("/payments/{id}", get(read))
        .route("/payments/{id}/refund", post(refund))
        .route("/payments/{id}/mark-paid", post(mark_paid))
        .route("/wallets/balance", get(balance))
        .route("/wallets/topup", post(topup))
        .route("/wallets/transactions", get(transactions))
        .route("/payment-methods", get(list_methods).post(add_method))
        .route("/payment-methods/{id}", delete(remove_method))
        .route("/admin/payments/review", get(review_queue))
        .route("/admin/payments/{id}/review", post(review))
        .route("/admin/payments/audit", get(audit_trail))
}

fn payment_id(raw: &str) -> Result<PaymentId> {
    raw.parse().map_err(|_| Error::not_found("payment"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InitiateBody {
    #[serde(default)]
    order_id: Option<Uuid>,
    #[serde(default)]
    purpose: Option<Purpose>,
    #[serde(default)]
    amount: Option<Money>,
    method: Method,
    #[serde(default)]
    payment_method_id: Option<PaymentMethodId>,
    #[serde(default)]
    card: Option<CardInput>,
    #[serde(default)]
    save_method: bool,
}

impl InitiateBody {
    fn into_input(self, forced: Option<Purpose>) -> InitiateInput {
        let purpose = forced
            .or(self.purpose)
            .unwrap_or(if self.order_id.is_some() {
                Purpose::Order
            } else {
                Purpose::WalletTopup
            });
        InitiateInput {
            purpose,
            order_id: self.order_id,
            amount: self.amount,
            method: self.method,
            payment_method_id: self.payment_method_id,
            card: self.card,
            save_method: self.save_method,
        }
    }
}

fn created(view: PaymentView) -> Response {
    (StatusCode::CREATED, Json(view)).into_response()
}

async fn start(
    state: AppState,
    p: Principal,
    client: ClientInfo,
    input: InitiateInput,
) -> Response {
    let ip = client.ip.map(|i| i.to_string());
    match flows::initiate(&state, &p, ip, input).await {
        Ok(pay) => created(PaymentView::of(&pay, p.is_admin())),
        Err(e) => e.into_response(),
    }
}

async fn initiate(
    State(state): State<AppState>,
    p: Principal,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = p.user_id.to_string();
    idempotency::guard(
        &state.clone(),
        &scope,
        "payments/initiate",
        &headers,
        &body,
        || async {
            let input: InitiateBody = match parse_body(&headers, &body).await {
                Ok(b) => b,
                Err(problem) => return problem.into_response(),
            };
            start(state, p, client, input.into_input(None)).await
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupBody {
    amount: Money,
    method: Method,
    #[serde(default)]
    payment_method_id: Option<PaymentMethodId>,
    #[serde(default)]
    card: Option<CardInput>,
    #[serde(default)]
    save_method: bool,
}

async fn topup(
    State(state): State<AppState>,
    p: Principal,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = p.user_id.to_string();
    idempotency::guard(
        &state.clone(),
        &scope,
        "wallets/topup",
        &headers,
        &body,
        || async {
            let b: TopupBody = match parse_body(&headers, &body).await {
                Ok(b) => b,
                Err(problem) => return problem.into_response(),
            };
            let input = InitiateInput {
                purpose: Purpose::WalletTopup,
                order_id: None,
                amount: Some(b.amount),
                method: b.method,
                payment_method_id: b.payment_method_id,
                card: b.card,
                save_method: b.save_method,
            };
            start(state, p, client, input).await
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    payment_id: String,
    code: String,
}

async fn confirm(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = p.user_id.to_string();
    idempotency::guard(
        &state.clone(),
        &scope,
        "payments/confirm",
        &headers,
        &body,
        || async {
            let b: ConfirmBody = match parse_body(&headers, &body).await {
                Ok(b) => b,
                Err(problem) => return problem.into_response(),
            };
            let result = async {
                let id = payment_id(&b.payment_id)?;
                if b.code.is_empty() || b.code.len() > 64 {
                    return Err(Error::invalid(
                        "code",
                        "invalid_length",
                        "must be 1 to 64 characters",
                    ));
                }
                flows::confirm(&state, &p, id, b.code).await
            }
            .await;
            match result {
                Ok(pay) => Json(PaymentView::of(&pay, p.is_admin())).into_response(),
                Err(e) => e.into_response(),
            }
        },
    )
    .await
}

async fn read(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<queries::PaymentAnswer>> {
    Ok(Json(queries::payment(&state, &p, payment_id(&id)?)?))
}

async fn refund(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = p.user_id.to_string();
    let route = format!("payments/{id}/refund");
    idempotency::guard(&state.clone(), &scope, &route, &headers, &body, || async {
        let input: RefundInput = match parse_body(&headers, &body).await {
            Ok(b) => b,
            Err(problem) => return problem.into_response(),
        };
        let result = async { refunds::refund(&state, &p, payment_id(&id)?, input).await }.await;
        match result {
            Ok(pay) => Json(PaymentView::of(&pay, true)).into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await
}

async fn mark_paid(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>> {
    let pay = completions::mark_paid(&state, &p, payment_id(&id)?).await?;
    Ok(Json(PaymentView::of(&pay, p.is_admin())))
}

/// The hosted provider's callback: authenticated by its signature, not by a login.
async fn hosted_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let pay =
        completions::hosted_callback(&state, &h("souk-timestamp"), &h("souk-signature"), &body)
            .await?;
    Ok(Json(
        serde_json::json!({"payment_id": pay.id, "status": pay.status.as_str()}),
    ))
}

async fn balance(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<queries::WalletBalance>> {
    Ok(Json(queries::wallet_balance(&state, &p)?))
}

async fn transactions(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<super::ledger::HistoryLine>>> {
    Ok(Json(queries::wallet_transactions(&state, &p, &q)?))
}

async fn list_methods(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Page<super::methods::MethodView>>> {
    Ok(Json(queries::methods(&state, &p)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMethodBody {
    card: CardInput,
}

async fn add_method(
    State(state): State<AppState>,
    p: Principal,
    Json(b): Json<AddMethodBody>,
) -> Result<(StatusCode, Json<super::methods::MethodView>)> {
    Ok((
        StatusCode::CREATED,
        Json(saved_methods::add_method(&state, &p, b.card).await?),
    ))
}

async fn remove_method(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: PaymentMethodId = id.parse().map_err(|_| Error::not_found("payment method"))?;
    saved_methods::remove_method(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn review_queue(
    State(state): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<PaymentView>>> {
    Ok(Json(queries::review_queue(&state, &p, &q)?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: Decision,
    #[serde(default)]
    note: String,
}

async fn review(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    Json(b): Json<ReviewBody>,
) -> Result<Json<PaymentView>> {
    let approve = matches!(b.decision, Decision::Approve);
    let pay = completions::review(&state, &p, payment_id(&id)?, approve, b.note).await?;
    Ok(Json(PaymentView::of(&pay, true)))
}

async fn audit_trail(
    State(state): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<super::audit::AuditEntry>>> {
    Ok(Json(queries::audit_trail(&state, &p, &q)?))
}
