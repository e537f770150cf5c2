//! /account/cards: the saved cards (brand, last four, expiry; nothing more is kept), removing
//! one, and saving a new one through the card gateway (the test gateway says so).

use super::wallet::{CARD_FIELDS, card_input, card_label, test_gateway};
use super::{Empty, FormErrors, done, error_sentence, form_errors, no_store, render_status, when};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::payments::model::PaymentMethodId;
use crate::services::payments::{queries, saved_methods};
use crate::web::{CsrfForm, Page, PageResult, SignedIn, WebError};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/account/cards",
            axum::routing::get(cards_page).post(add_card),
        )
        .route("/account/cards/{id}/remove", post(remove_card))
}

// ---------------------------------------------------------------------------------------
// Saved cards

#[derive(Serialize)]
struct CardRow {
    id: String,
    label: String,
    test_mode: bool,
    added: String,
    remove_url: String,
}

#[derive(Serialize, Default)]
struct CardForm {
    exp_month: String,
    exp_year: String,
}

#[derive(Serialize)]
struct CardsPage {
    section: &'static str,
    cards: Vec<CardRow>,
    add_enabled: bool,
    test_gateway: bool,
    form: CardForm,
    errors: FormErrors,
    form_error: Option<String>,
}

fn cards_ctx(state: &AppState, p: &Principal) -> Result<CardsPage, WebError> {
    let cards = queries::methods(state, p)?
        .items
        .iter()
        .map(|m| CardRow {
            id: m.id.to_string(),
            label: card_label(state, m),
            test_mode: m.test_mode,
            added: when(m.created_at),
            remove_url: format!("/account/cards/{}/remove", m.id),
        })
        .collect();
    Ok(CardsPage {
        section: "cards",
        cards,
        add_enabled: state.payments.card.is_some(),
        test_gateway: test_gateway(state),
        form: CardForm::default(),
        errors: FormErrors::new(),
        form_error: None,
    })
}

async fn cards_page(State(state): State<AppState>, SignedIn(page, p): SignedIn) -> PageResult {
    let ctx = cards_ctx(&state, &p)?;
    Ok(no_store(crate::web::render(
        &state,
        &page,
        "storefront/account/cards.html",
        ctx,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardBody {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    exp_month: String,
    #[serde(default)]
    exp_year: String,
    #[serde(default)]
    cvc: String,
}

async fn add_card(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<CardBody>,
) -> PageResult {
    let mut ctx = cards_ctx(&state, &p)?;
    ctx.form = CardForm {
        exp_month: body.exp_month.clone(),
        exp_year: body.exp_year.clone(),
    };
    let card = match card_input(
        &state,
        &body.card_number,
        &body.exp_month,
        &body.exp_year,
        &body.cvc,
    ) {
        Ok(c) => c,
        Err(errors) => {
            ctx.errors = errors;
            return refuse_cards(&state, &page, ctx, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    match saved_methods::add_method(&state, &p, card).await {
        Ok(_) => Ok(done(&state, "/account/cards", "account.cards.added")),
        Err(Error::Validation(fields)) => {
            ctx.errors = form_errors(&state, &fields, "", CARD_FIELDS);
            refuse_cards(&state, &page, ctx, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e @ (Error::Unavailable { .. } | Error::Conflict { .. })) => {
            let status = crate::http::problem::status_of(&e);
            ctx.form_error = Some(error_sentence(&state, &e));
            refuse_cards(&state, &page, ctx, status)
        }
        Err(e) => Err(e.into()),
    }
}

fn refuse_cards(state: &AppState, page: &Page, ctx: CardsPage, status: StatusCode) -> PageResult {
    render_status(state, page, "storefront/account/cards.html", ctx, status)
}

async fn remove_card(
    State(state): State<AppState>,
    SignedIn(_page, p): SignedIn,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let mid: PaymentMethodId = id.parse().map_err(|_| WebError::not_found())?;
    saved_methods::remove_method(&state, &p, mid).await?;
    Ok(done(&state, "/account/cards", "account.cards.removed"))
}
