//! The confirm step of a wallet top-up (the test gateway's stand-in for 3-D Secure):
//! the page asking for the card issuer's code, and its answer. Only the payer's own
//! top-up waiting for a code is shown; anything else is 404 or back to the wallet.

use super::wallet::{Outcome, after_payment};
use super::{FormErrors, error_sentence, render_status};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::money::Money;
use crate::services::payments;
use crate::services::payments::model::{NextAction, PaymentId, Purpose, Status};
use crate::services::payments::queries::{self, PaymentAnswer};
use crate::web::{CsrfForm, Flash, PageResult, SignedIn, WebError, redirect};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/account/wallet/topup/{id}",
        get(confirm_page).post(confirm),
    )
}

// ---------------------------------------------------------------------------------------
// The confirm step (the test gateway's stand-in for 3-D Secure)

#[derive(Serialize)]
struct ConfirmPage {
    section: &'static str,
    id: String,
    amount: Money,
    message: String,
    test_mode: bool,
    errors: FormErrors,
}

/// A wallet top-up of the caller's that waits for its code; anything else is 404 or,
/// once decided, back to the wallet.
fn pending_topup(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<Result<(PaymentId, ConfirmPage), axum::response::Response>, WebError> {
    let pid: PaymentId = id.parse().map_err(|_| WebError::not_found())?;
    let PaymentAnswer::Full(v) = queries::payment(state, p, pid)? else {
        return Err(WebError::not_found());
    };
    if v.purpose != Purpose::WalletTopup {
        return Err(WebError::not_found());
    }
    if v.status != Status::RequiresConfirmation.as_str() {
        return Ok(Err(crate::web::redirect_plain("/account/wallet")));
    }
    let message = match &v.next_action {
        Some(NextAction::Confirm { message }) => message.clone(),
        _ => String::new(),
    };
    Ok(Ok((
        pid,
        ConfirmPage {
            section: "wallet",
            id: pid.to_string(),
            amount: v.amount,
            message,
            test_mode: v.test_mode,
            errors: FormErrors::new(),
        },
    )))
}

async fn confirm_page(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    match pending_topup(&state, &p, &id)? {
        Ok((_, ctx)) => render_status(
            &state,
            &page,
            "storefront/account/topup_confirm.html",
            ctx,
            StatusCode::OK,
        ),
        Err(r) => Ok(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    #[serde(default)]
    code: String,
}

async fn confirm(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
    CsrfForm(body): CsrfForm<ConfirmBody>,
) -> PageResult {
    let (pid, mut ctx) = match pending_topup(&state, &p, &id)? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if body.code.trim().is_empty() {
        ctx.errors
            .insert("code".into(), state.web.i18n.t("account.errors.required"));
        return render_status(
            &state,
            &page,
            "storefront/account/topup_confirm.html",
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    match payments::confirm(&state, &p, pid, body.code.trim().to_string()).await {
        Ok(pay) => Ok(after_payment(&state, &Outcome::of(&pay))),
        Err(e @ (Error::Conflict { .. } | Error::Unavailable { .. })) => Ok(redirect(
            &state,
            "/account/wallet",
            Flash::error(error_sentence(&state, &e)),
        )),
        Err(e) => Err(e.into()),
    }
}
