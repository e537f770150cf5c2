//! /account/wallet: the wallet's balance and history, and topping it up by card (a new one
//! or a saved one; with the confirm step when the card asks for it). Every page that can
//! move money through the built-in test gateway says so. A card number is never written
//! back into a page, not even a refused form. The confirm step is in `account_topup`.

use super::{FormErrors, form_errors, render_status, when};
use crate::app::AppState;
use crate::auth::{ClientInfo, Principal};
use crate::error::FieldError;
use crate::http::idempotency;
use crate::money::{Currency, Money};
use crate::services::PageQuery;
use crate::services::payments::gateway::CardInput;
use crate::services::payments::model::{Method, PaymentId, PaymentMethodId, Purpose, Status};
use crate::services::payments::queries;
use crate::services::payments::{self, flows::InitiateInput};
use crate::web::{CsrfForm, Flash, PageResult, SignedIn, WebError, redirect, urlencode};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/wallet", get(wallet_page))
        .route("/account/wallet/topup", post(topup))
}

/// Service field names → the form's.
pub(crate) const CARD_FIELDS: &[(&str, &str)] = &[
    ("card.number", "card_number"),
    ("card.exp_month", "exp_month"),
    ("card.exp_year", "exp_year"),
    ("card.cvc", "cvc"),
    ("card", "card_number"),
    ("amount.amount", "amount"),
    ("amount.currency", "amount"),
    ("payment_method_id", "method_id"),
];

fn currency(state: &AppState) -> Currency {
    Currency::parse(&state.config.payments.currency).unwrap_or(Currency::EUR)
}

/// Digits after the decimal point for a currency (the money formatter's rule).
fn minor_digits(c: Currency) -> u32 {
    let one = crate::web::i18n::money(1, c.as_str());
    one.rsplit_once(['.', ','])
        .map(|(_, frac)| frac.chars().filter(char::is_ascii_digit).count() as u32)
        .unwrap_or(0)
}

/// "25", "25.5", "25.50" or "25,50" → minor units; anything else (thousands separators,
/// signs, too many decimals) is `None`.
pub(crate) fn parse_amount(raw: &str, digits: u32) -> Option<i64> {
    let s = raw.trim().trim_start_matches(['€', '$', '£']).trim();
    let (whole, frac) = match s.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    if frac.len() > digits as usize {
        return None;
    }
    let scale = 10i64.pow(digits);
    let w: i64 = whole.parse().ok()?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(digits - frac.len() as u32)
    };
    w.checked_mul(scale)?.checked_add(f)
}

// ---------------------------------------------------------------------------------------
// Wallet

#[derive(Serialize)]
struct CardChoice {
    id: String,
    label: String,
}

#[derive(Serialize)]
struct HistoryRow {
    at: String,
    memo: String,
    reference: String,
    amount: Money,
}

#[derive(Serialize, Default)]
struct TopupForm {
    /// Fresh on every render: one press of the button, one payment.
    idempotency_key: String,
    amount: String,
    method_id: String,
    exp_month: String,
    exp_year: String,
    save_card: bool,
}

#[derive(Serialize)]
struct WalletPage {
    section: &'static str,
    balance: Money,
    other_balances: Vec<Money>,
    history: Vec<HistoryRow>,
    next_url: Option<String>,
    /// Card top-ups are possible (the card gateway is enabled).
    topup_enabled: bool,
    test_gateway: bool,
    min: Money,
    max: Money,
    cards: Vec<CardChoice>,
    form: TopupForm,
    errors: FormErrors,
    form_error: Option<String>,
}

#[derive(Deserialize, Default)]
struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

pub(crate) fn test_gateway(state: &AppState) -> bool {
    state
        .payments
        .card
        .as_ref()
        .is_some_and(|c| c.gateway.test_mode())
}

pub(crate) fn card_label(state: &AppState, m: &payments::methods::MethodView) -> String {
    state.web.i18n.t_with(
        "account.cards.label",
        &[
            ("brand", &m.brand),
            ("last4", &m.last4),
            ("month", &format!("{:02}", m.exp_month)),
            ("year", &m.exp_year.to_string()),
        ],
    )
}

fn wallet_ctx(
    state: &AppState,
    p: &Principal,
    cursor: Option<String>,
) -> Result<WalletPage, WebError> {
    let cur = currency(state);
    let bal = queries::wallet_balance(state, p)?;
    let pq = PageQuery {
        cursor,
        limit: Some(20),
    };
    let hist = queries::wallet_transactions(state, p, &pq)?;
    let cards = queries::methods(state, p)?
        .items
        .iter()
        .map(|m| CardChoice {
            id: m.id.to_string(),
            label: card_label(state, m),
        })
        .collect();
    let pc = &state.config.payments;
    Ok(WalletPage {
        section: "wallet",
        balance: bal.balance,
        other_balances: bal
            .balances
            .into_iter()
            .filter(|m| m.currency != cur && m.amount != 0)
            .collect(),
        history: hist
            .items
            .iter()
            .map(|l| HistoryRow {
                at: when(l.at),
                memo: l.memo.clone(),
                reference: l.reference.clone(),
                amount: l.amount,
            })
            .collect(),
        next_url: hist
            .next_cursor
            .map(|c| format!("/account/wallet?cursor={}#history", urlencode(&c))),
        topup_enabled: state.payments.card.is_some(),
        test_gateway: test_gateway(state),
        min: Money::new(pc.topup_min, cur),
        max: Money::new(pc.topup_max, cur),
        cards,
        form: TopupForm {
            idempotency_key: new_key(),
            ..Default::default()
        },
        errors: FormErrors::new(),
        form_error: None,
    })
}

fn new_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

async fn wallet_page(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Query(q): Query<CursorQuery>,
) -> PageResult {
    let ctx = match wallet_ctx(&state, &p, q.cursor) {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            return Ok(crate::web::redirect_plain("/account/wallet"));
        }
        Err(e) => return Err(e),
    };
    render_status(
        &state,
        &page,
        "storefront/account/wallet.html",
        ctx,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupBody {
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    amount: String,
    /// A saved card's id, or empty for the card typed below.
    #[serde(default)]
    method_id: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    exp_month: String,
    #[serde(default)]
    exp_year: String,
    #[serde(default)]
    cvc: String,
    #[serde(default)]
    save_card: Option<String>,
}

/// The card typed into a form, or the fields that are not numbers.
pub(crate) fn card_input(
    state: &AppState,
    number: &str,
    month: &str,
    year: &str,
    cvc: &str,
) -> Result<CardInput, FormErrors> {
    let mut errors = FormErrors::new();
    let exp_month = month.trim().parse::<u8>().ok();
    let exp_year = year.trim().parse::<u16>().ok();
    if exp_month.is_none() {
        errors.insert(
            "exp_month".into(),
            state.web.i18n.t("account.errors.exp_month"),
        );
    }
    if exp_year.is_none() {
        errors.insert(
            "exp_year".into(),
            state.web.i18n.t("account.errors.exp_year"),
        );
    }
    match (exp_month, exp_year) {
        (Some(exp_month), Some(exp_year)) => Ok(CardInput {
            number: number.trim().to_string(),
            exp_month,
            exp_year,
            cvc: cvc.trim().to_string(),
        }),
        _ => Err(errors),
    }
}

async fn topup(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    client: ClientInfo,
    CsrfForm(body): CsrfForm<TopupBody>,
) -> PageResult {
    let mut ctx = wallet_ctx(&state, &p, None)?;
    ctx.form = TopupForm {
        idempotency_key: new_key(),
        amount: body.amount.clone(),
        method_id: body.method_id.clone(),
        exp_month: body.exp_month.clone(),
        exp_year: body.exp_year.clone(),
        save_card: body.save_card.is_some(),
    };
    let refuse = |ctx: WalletPage, status| {
        render_status(&state, &page, "storefront/account/wallet.html", ctx, status)
    };
    let cur = currency(&state);
    let Some(amount) = parse_amount(&body.amount, minor_digits(cur)) else {
        ctx.errors
            .insert("amount".into(), state.web.i18n.t("account.errors.amount"));
        return refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let (card, payment_method_id) = if body.method_id.is_empty() {
        match card_input(
            &state,
            &body.card_number,
            &body.exp_month,
            &body.exp_year,
            &body.cvc,
        ) {
            Ok(c) => (Some(c), None),
            Err(errors) => {
                ctx.errors = errors;
                return refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY);
            }
        }
    } else {
        let id: PaymentMethodId = body.method_id.parse().map_err(|_| WebError::not_found())?;
        (None, Some(id))
    };
    let input = InitiateInput {
        purpose: Purpose::WalletTopup,
        order_id: None,
        amount: Some(Money::new(amount, cur)),
        method: Method::Card,
        payment_method_id,
        save_method: card.is_some() && body.save_card.is_some(),
        card,
    };
    // A second press of the button (or a reload of the POST) carries the same key and gets
    // the first answer back instead of charging again.
    let mut headers = HeaderMap::new();
    if let Ok(k) = HeaderValue::from_str(body.idempotency_key.trim())
        && !body.idempotency_key.trim().is_empty()
    {
        headers.insert(idempotency::HEADER, k);
    }
    let fingerprint = format!(
        "{amount}|{}|{}|{}|{}|{}",
        body.method_id,
        body.card_number.replace([' ', '-'], ""),
        body.exp_month.trim(),
        body.exp_year.trim(),
        body.save_card.is_some()
    );
    let (st, pp) = (state.clone(), p.clone());
    let ip = client.ip.map(|i| i.to_string());
    let answer = idempotency::guard(
        &state,
        &p.actor(),
        "web/account/wallet/topup",
        &headers,
        fingerprint.as_bytes(),
        || async move {
            match payments::initiate(&st, &pp, ip, input).await {
                Ok(pay) => axum::Json(Outcome::of(&pay)).into_response(),
                Err(e) => e.into_response(),
            }
        },
    )
    .await;
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .map_err(WebError::internal)?;
    if status.is_success() {
        let outcome: Outcome = serde_json::from_slice(&bytes).map_err(WebError::internal)?;
        return Ok(after_payment(&state, &outcome));
    }
    if status.is_server_error() {
        return Err(WebError::status(status, "errors.internal"));
    }
    // A refusal, as problem+json: field errors go next to their fields.
    let problem: Refusal = serde_json::from_slice(&bytes).map_err(WebError::internal)?;
    if problem.errors.is_empty() {
        let i18n = &state.web.i18n;
        ctx.form_error = Some(
            i18n.lookup(&format!("account.errors.{}", problem.code))
                .map(String::from)
                .unwrap_or(problem.detail),
        );
    } else {
        let fields: Vec<FieldError> = problem
            .errors
            .into_iter()
            .map(|f| FieldError::new(f.field, f.code, f.message))
            .collect();
        ctx.errors = form_errors(&state, &fields, "", CARD_FIELDS);
        // What no field of the form can show (the idempotency key) goes on top.
        let known = [
            "amount",
            "method_id",
            "card_number",
            "exp_month",
            "exp_year",
            "cvc",
        ];
        let stray: Vec<String> = ctx
            .errors
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in stray {
            ctx.form_error = ctx.errors.remove(&k);
        }
    }
    refuse(ctx, status)
}

/// What a top-up's first request answered, kept for its replays.
#[derive(Serialize, Deserialize)]
pub(crate) struct Outcome {
    payment_id: PaymentId,
    status: Status,
    amount: Money,
    test_mode: bool,
    failure_reason: Option<String>,
}

impl Outcome {
    pub(crate) fn of(p: &payments::model::Payment) -> Outcome {
        Outcome {
            payment_id: p.id,
            status: p.status,
            amount: p.amount,
            test_mode: p.test_mode,
            failure_reason: p.failure_reason.clone(),
        }
    }
}

/// The parts of a problem+json refusal a form needs.
#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<RefusedField>,
}

#[derive(Deserialize)]
struct RefusedField {
    field: String,
    code: String,
    message: String,
}

/// Where a top-up goes next, told in a flash message.
pub(crate) fn after_payment(state: &AppState, pay: &Outcome) -> axum::response::Response {
    let i18n = &state.web.i18n;
    let amount = crate::web::i18n::money(pay.amount.amount, pay.amount.currency.as_str());
    match pay.status {
        Status::Succeeded => {
            let mut msg = i18n.t_with("account.wallet.topped_up", &[("amount", &amount)]);
            if pay.test_mode {
                msg = format!("{msg} {}", i18n.t("account.wallet.test_notice_short"));
            }
            redirect(state, "/account/wallet", Flash::success(msg))
        }
        Status::RequiresConfirmation => {
            crate::web::redirect_plain(&format!("/account/wallet/topup/{}", pay.payment_id))
        }
        Status::InReview => redirect(
            state,
            "/account/wallet",
            Flash::info(i18n.t("account.wallet.in_review")),
        ),
        Status::Failed => {
            let reason = pay.failure_reason.clone().unwrap_or_default();
            let why = i18n
                .lookup(&format!("account.wallet.failure.{reason}"))
                .map(String::from)
                .unwrap_or(reason);
            redirect(
                state,
                "/account/wallet",
                Flash::error(i18n.t_with("account.wallet.failed", &[("reason", &why)])),
            )
        }
        _ => redirect(
            state,
            "/account/wallet",
            Flash::info(i18n.t("account.wallet.pending")),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units() {
        assert_eq!(parse_amount("25", 2), Some(2500));
        assert_eq!(parse_amount("25.5", 2), Some(2550));
        assert_eq!(parse_amount(" 25,50 ", 2), Some(2550));
        assert_eq!(parse_amount("€10.05", 2), Some(1005));
        assert_eq!(parse_amount("0.01", 2), Some(1));
        assert_eq!(parse_amount("1500", 0), Some(1500));
        for bad in ["", "-5", "1,000.00", "2.555", "abc", "1e3", ".5"] {
            assert_eq!(parse_amount(bad, 2), None, "{bad}");
        }
        assert_eq!(parse_amount("1.5", 0), None);
        assert_eq!(minor_digits(Currency::EUR), 2);
    }
}
