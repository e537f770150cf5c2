//! The account pages: sign in, register, MFA challenge, password reset (`auth_pages`),
//! profile and addresses (here), security (`account_security`), orders
//! (`account_orders`), wallet and saved cards (`account_wallet`). Every page calls the
//! same service functions as the JSON API and never opens a table; every form carries the
//! CSRF token, and a refused form is shown again with its messages, having changed nothing.

#[path = "auth_pages.rs"]
mod auth_pages;
#[path = "account_cards.rs"]
mod cards;
#[path = "account_orders.rs"]
mod orders;
#[path = "account_recovery.rs"]
mod recovery;
#[path = "account_security.rs"]
mod security;
#[path = "account_topup.rs"]
mod topup;
#[path = "account_wallet.rs"]
mod wallet;

use crate::app::AppState;
use crate::error::{Error, FieldError};
use crate::services::users::{self, ProfileInput, model::Address};
use crate::web::{CsrfForm, Flash, Page, PageResult, SignedIn, WebError, redirect, render};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$((
            concat!("storefront/", $name),
            include_str!(concat!("../../../templates/storefront/", $name)),
        )),*]
    };
}

/// Templates under `templates/storefront/account/` and `templates/storefront/auth/`.
pub const TEMPLATES: &[(&str, &str)] = templates!(
    "account/_macros.html",
    "account/_nav.html",
    "account/profile.html",
    "account/address.html",
    "account/notifications.html",
    "account/security.html",
    "account/mfa_setup.html",
    "account/recovery_codes.html",
    "account/orders.html",
    "account/order.html",
    "account/wallet.html",
    "account/topup_confirm.html",
    "account/cards.html",
    "auth/signin.html",
    "auth/mfa.html",
    "auth/register.html",
    "auth/forgot.html",
    "auth/reset.html",
    "auth/verify.html",
);

/// English UI text for the account pages, as TOML (keys under `account.`).
pub const STRINGS: &str = include_str!("account_en.toml");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(profile_page).post(save_profile))
        .route("/account/addresses/new", get(new_address).post(add_address))
        .route(
            "/account/addresses/{index}",
            get(edit_address).post(update_address),
        )
        .route("/account/addresses/{index}/delete", post(delete_address))
        .route("/account/notifications", get(notifications))
        .merge(auth_pages::router())
        .merge(recovery::router())
        .merge(cards::router())
        .merge(security::router())
        .merge(orders::router())
        .merge(wallet::router())
        .merge(topup::router())
}

/// A form's messages by field name, shown next to each input.
pub(crate) type FormErrors = BTreeMap<String, String>;

/// The text of a field error: our translation of its stable code when we have one, else
/// the service's own message.
pub(crate) fn field_message(state: &AppState, e: &FieldError) -> String {
    let i18n = &state.web.i18n;
    i18n.lookup(&format!("account.errors.{}", e.code))
        .map(String::from)
        .unwrap_or_else(|| {
            let mut m = e.message.clone();
            if let Some(c) = m.get(..1) {
                m = format!("{}{}", c.to_uppercase(), &m[1..]);
            }
            m
        })
}

/// Field errors keyed by the form's own field names: `strip` removes a service prefix
/// (`addresses[2].`), `rename` maps a service field to the form's (`amount.amount` → `amount`).
pub(crate) fn form_errors(
    state: &AppState,
    fields: &[FieldError],
    strip: &str,
    rename: &[(&str, &str)],
) -> FormErrors {
    let mut out = FormErrors::new();
    for f in fields {
        let mut name = f.field.strip_prefix(strip).unwrap_or(&f.field).to_string();
        if let Some((_, to)) = rename.iter().find(|(from, _)| *from == name) {
            name = (*to).to_string();
        }
        out.entry(name).or_insert_with(|| field_message(state, f));
    }
    out
}

/// What a refused command says to a person: field errors are the form's job, anything
/// else is one sentence at the top of the form.
pub(crate) fn error_sentence(state: &AppState, e: &Error) -> String {
    let i18n = &state.web.i18n;
    match e {
        Error::RateLimited { retry_after_secs } => i18n.t_with(
            "account.errors.rate_limited",
            &[("minutes", &retry_after_secs.div_ceil(60).max(1).to_string())],
        ),
        Error::Conflict { code, message } => i18n
            .lookup(&format!("account.errors.{code}"))
            .map(String::from)
            .unwrap_or_else(|| message.clone()),
        other => other.to_string(),
    }
}

/// Renders a page with another status than 200 (a refused form is 422, a bad sign-in 401).
pub(crate) fn render_status(
    state: &AppState,
    page: &Page,
    template: &str,
    ctx: impl Serialize,
    status: StatusCode,
) -> PageResult {
    let mut res = render(state, page, template, ctx)?;
    *res.status_mut() = status;
    Ok(no_store(res))
}

/// Pages showing secrets or personal data must not stay in shared caches or history.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `26 Nov 2026, 09:30 UTC`: how the account pages show a moment.
pub(crate) fn when(t: OffsetDateTime) -> String {
    const F: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(F)
        .unwrap_or_default()
}

/// The same for the RFC 3339 strings some views carry.
pub(crate) fn when_str(s: &str) -> String {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(when)
        .unwrap_or_else(|_| s.to_string())
}

/// The flash a successful form leaves, from a translation key.
pub(crate) fn done(state: &AppState, to: &str, key: &str) -> Response {
    redirect(state, to, Flash::success(state.web.i18n.t(key)))
}

// ---------------------------------------------------------------------------------------
// Profile

/// Locale tags offered on the profile form (the stored value is any valid tag).
const LOCALES: &[&str] = &["en", "en-GB", "fr", "de", "es", "it", "nl", "pt", "ar"];

#[derive(Serialize, Default)]
struct ProfileForm {
    name: String,
    phone: String,
    locale: String,
    marketing_consent: bool,
}

#[derive(Serialize)]
struct ProfilePage {
    section: &'static str,
    email: String,
    email_verified: bool,
    form: ProfileForm,
    errors: FormErrors,
    form_error: Option<String>,
    locales: Vec<String>,
    addresses: Vec<Address>,
    max_addresses: usize,
}

fn profile_ctx(state: &AppState, p: &crate::auth::Principal) -> Result<ProfilePage, WebError> {
    let u = users::current_user(state, p)?;
    let mut locales: Vec<String> = LOCALES.iter().map(|s| s.to_string()).collect();
    if let Some(l) = &u.locale
        && !locales.contains(l)
    {
        locales.push(l.clone());
    }
    Ok(ProfilePage {
        section: "profile",
        email: u.email.to_string(),
        email_verified: u.email_verified,
        form: ProfileForm {
            name: u.name.clone(),
            phone: u.phone.clone().unwrap_or_default(),
            locale: u.locale.clone().unwrap_or_default(),
            marketing_consent: u.marketing_consent,
        },
        errors: FormErrors::new(),
        form_error: None,
        locales,
        addresses: u.addresses,
        max_addresses: 10,
    })
}

async fn profile_page(State(state): State<AppState>, SignedIn(page, p): SignedIn) -> PageResult {
    let ctx = profile_ctx(&state, &p)?;
    Ok(no_store(render(
        &state,
        &page,
        "storefront/account/profile.html",
        ctx,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    marketing_consent: Option<String>,
}

fn optional(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn save_profile(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<ProfileBody>,
) -> PageResult {
    let input = ProfileInput {
        name: Some(body.name.clone()),
        phone: Some(optional(&body.phone)),
        locale: Some(optional(&body.locale)),
        marketing_consent: Some(body.marketing_consent.is_some()),
        ..Default::default()
    };
    match users::update_profile(&state, &p, input).await {
        Ok(_) => Ok(done(&state, "/account", "account.profile.saved")),
        Err(Error::Validation(fields)) => {
            let mut ctx = profile_ctx(&state, &p)?;
            ctx.form = ProfileForm {
                name: body.name,
                phone: body.phone,
                locale: body.locale,
                marketing_consent: body.marketing_consent.is_some(),
            };
            ctx.errors = form_errors(&state, &fields, "", &[]);
            render_status(
                &state,
                &page,
                "storefront/account/profile.html",
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Addresses: the profile's list, edited one at a time and saved whole through the profile.

#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    #[serde(default)]
    label: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
}

impl AddressBody {
    fn of(a: &Address) -> AddressBody {
        AddressBody {
            label: a.label.clone().unwrap_or_default(),
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone().unwrap_or_default(),
            city: a.city.clone(),
            region: a.region.clone().unwrap_or_default(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
    }

    fn to_address(&self) -> Address {
        Address {
            label: optional(&self.label),
            name: self.name.trim().to_string(),
            line1: self.line1.trim().to_string(),
            line2: optional(&self.line2),
            city: self.city.trim().to_string(),
            region: optional(&self.region),
            postal_code: self.postal_code.trim().to_string(),
            country: self.country.trim().to_uppercase(),
        }
    }
}

#[derive(Serialize)]
struct AddressPage {
    section: &'static str,
    /// `None` for a new address.
    index: Option<usize>,
    form: AddressBody,
    errors: FormErrors,
    form_error: Option<String>,
}

fn address_page(state: &AppState, page: &Page, ctx: AddressPage, status: StatusCode) -> PageResult {
    render_status(state, page, "storefront/account/address.html", ctx, status)
}

async fn new_address(State(state): State<AppState>, SignedIn(page, _p): SignedIn) -> PageResult {
    let ctx = AddressPage {
        section: "profile",
        index: None,
        form: AddressBody::default(),
        errors: FormErrors::new(),
        form_error: None,
    };
    address_page(&state, &page, ctx, StatusCode::OK)
}

fn address_at(
    state: &AppState,
    p: &crate::auth::Principal,
    index: usize,
) -> Result<(Vec<Address>, Address), WebError> {
    let list = users::current_user(state, p)?.addresses;
    let a = list.get(index).cloned().ok_or_else(WebError::not_found)?;
    Ok((list, a))
}

async fn edit_address(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(index): Path<usize>,
) -> PageResult {
    let (_, a) = address_at(&state, &p, index)?;
    let ctx = AddressPage {
        section: "profile",
        index: Some(index),
        form: AddressBody::of(&a),
        errors: FormErrors::new(),
        form_error: None,
    };
    address_page(&state, &page, ctx, StatusCode::OK)
}

/// Saves the whole list; a refusal re-renders the one address being edited.
async fn save_addresses(
    state: &AppState,
    page: &Page,
    p: &crate::auth::Principal,
    list: Vec<Address>,
    index: Option<usize>,
    form: AddressBody,
    flash_key: &str,
) -> PageResult {
    let edited = index.unwrap_or(list.len().saturating_sub(1));
    let input = ProfileInput {
        addresses: Some(list),
        ..Default::default()
    };
    match users::update_profile(state, p, input).await {
        Ok(_) => Ok(done(state, "/account#addresses", flash_key)),
        Err(Error::Validation(fields)) => {
            let prefix = format!("addresses[{edited}].");
            let errors = form_errors(state, &fields, &prefix, &[]);
            let form_error = fields
                .iter()
                .find(|f| f.field == "addresses")
                .map(|f| field_message(state, f));
            let ctx = AddressPage {
                section: "profile",
                index,
                form,
                errors,
                form_error,
            };
            address_page(state, page, ctx, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

async fn add_address(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    CsrfForm(body): CsrfForm<AddressBody>,
) -> PageResult {
    let mut list = users::current_user(&state, &p)?.addresses;
    list.push(body.to_address());
    save_addresses(
        &state,
        &page,
        &p,
        list,
        None,
        body,
        "account.addresses.added",
    )
    .await
}

async fn update_address(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(index): Path<usize>,
    CsrfForm(body): CsrfForm<AddressBody>,
) -> PageResult {
    let (mut list, _) = address_at(&state, &p, index)?;
    list[index] = body.to_address();
    save_addresses(
        &state,
        &page,
        &p,
        list,
        Some(index),
        body,
        "account.addresses.saved",
    )
    .await
}

/// A form with no field but its CSRF token (a button).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Empty {}

async fn delete_address(
    State(state): State<AppState>,
    SignedIn(_page, p): SignedIn,
    Path(index): Path<usize>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let (mut list, _) = address_at(&state, &p, index)?;
    list.remove(index);
    let input = ProfileInput {
        addresses: Some(list),
        ..Default::default()
    };
    users::update_profile(&state, &p, input).await?;
    Ok(done(
        &state,
        "/account#addresses",
        "account.addresses.deleted",
    ))
}

// ---------------------------------------------------------------------------------------
// Notifications: a placeholder until the notification service brings preferences.

async fn notifications(State(state): State<AppState>, SignedIn(page, _p): SignedIn) -> PageResult {
    Ok(no_store(render(
        &state,
        &page,
        "storefront/account/notifications.html",
        serde_json::json!({"section": "notifications"}),
    )?))
}
