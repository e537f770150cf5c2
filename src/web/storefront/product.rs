//! The product page: images in responsive sizes, variants (a select inside the add-to-cart
//! form, so choosing works without JavaScript; the script only updates price and stock as
//! the choice changes), stock, the vendor, breadcrumbs, related products, SEO data
//! (OpenGraph, JSON-LD Product), and the "back in stock" sign-up when sold out.

use super::browse::Card;
use super::product_cache;
use crate::app::AppState;
use crate::error::Error;
use crate::log::event::Event;
use crate::money::Money;
use crate::services::catalog::back_in_stock;
use crate::services::catalog::queries::{self, ImageView, ProductView};
use crate::web::cache;
use crate::web::i18n::money;
use crate::web::{CsrfForm, Flash, Page, PageResult, WebError, redirect, render, urlencode};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/p/{slug}", get(product_page))
        .route("/p/{slug}/notify", post(notify))
}

#[derive(Deserialize)]
struct VariantQuery {
    variant: Option<String>,
}

#[derive(Serialize)]
struct VariantCtx {
    id: String,
    label: String,
    price: Money,
    price_text: String,
    compare_at_price: Option<Money>,
    in_stock: bool,
    selected: bool,
}

#[derive(Serialize)]
struct Crumb {
    name: String,
    slug: String,
}

#[derive(Serialize)]
pub(super) struct ProductPage {
    pub(super) product: ProductView,
    variants: Vec<VariantCtx>,
    selected_price: Option<Money>,
    selected_compare_at: Option<Money>,
    selected_in_stock: bool,
    selected_variant: String,
    breadcrumbs: Vec<Crumb>,
    main_image: Option<ImageView>,
    more_images: Vec<ImageView>,
    related: Vec<Card>,
    ld: serde_json::Value,
    canonical_path: String,
    meta_description: String,
    og_image: Option<String>,
    notify_email: String,
    max_quantity: i64,
    notify_error: Option<String>,
}

fn variant_label(options: &std::collections::BTreeMap<String, String>, sku: &str) -> String {
    if options.is_empty() {
        sku.to_string()
    } else {
        options
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "12.34" for schema.org: minor units as a decimal string, no float on the way.
fn decimal(m: Money) -> String {
    crate::web::i18n::decimal(m.amount, m.currency.as_str())
}

fn description_meta(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 160 {
        return flat;
    }
    let mut cut: String = flat.chars().take(157).collect();
    if let Some(i) = cut.rfind(' ') {
        cut.truncate(i);
    }
    cut.push('…');
    cut
}

fn ld_json(state: &AppState, p: &ProductView, url: &str) -> serde_json::Value {
    let base = state.config.public_url();
    let images: Vec<String> = p
        .images
        .iter()
        .map(|i| format!("{base}{}", i.full))
        .collect();
    let availability = if p.stock_status == "out_of_stock" {
        "https://schema.org/OutOfStock"
    } else {
        "https://schema.org/InStock"
    };
    let prices: Vec<Money> = p.variants.iter().map(|v| v.price).collect();
    let currency = p.price.map(|m| m.currency.to_string()).unwrap_or_default();
    let offers = match (
        prices.iter().map(|m| m.amount).min(),
        prices.iter().map(|m| m.amount).max(),
    ) {
        (Some(lo), Some(hi)) if lo != hi => json!({
            "@type": "AggregateOffer",
            "lowPrice": decimal(Money { amount: lo, ..prices[0] }),
            "highPrice": decimal(Money { amount: hi, ..prices[0] }),
            "priceCurrency": currency,
            "offerCount": prices.len(),
            "availability": availability,
            "url": url,
        }),
        _ => json!({
            "@type": "Offer",
            "price": p.price.map(decimal),
            "priceCurrency": currency,
            "availability": availability,
            "url": url,
            "seller": {"@type": "Organization", "name": p.vendor.name},
        }),
    };
    let mut ld = json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": p.title,
        "description": p.description,
        "sku": p.variants.first().map(|v| v.sku.clone()),
        "image": images,
        "url": url,
        "offers": offers,
    });
    if let Some(b) = &p.brand {
        ld["brand"] = json!({"@type": "Brand", "name": b});
    }
    if let Some(c) = &p.category {
        ld["category"] = json!(c.name);
    }
    ld
}

/// The product page's context as `viewer` sees it (`email` prefills the "back in stock"
/// form).
pub(super) async fn product_ctx(
    state: &AppState,
    viewer: Option<&crate::auth::Principal>,
    email: &str,
    slug: &str,
    wanted: Option<&str>,
) -> Result<ProductPage, WebError> {
    let (product, _etag) = queries::product_for(state, viewer, slug)?;
    let pick = wanted
        .and_then(|w| product.variants.iter().position(|v| v.id.to_string() == w))
        .or_else(|| product.variants.iter().position(|v| v.in_stock))
        .unwrap_or(0);
    let variants: Vec<VariantCtx> = product
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| VariantCtx {
            id: v.id.to_string(),
            label: variant_label(&v.options, &v.sku),
            price: v.price,
            price_text: money(v.price.amount, v.price.currency.as_str()),
            compare_at_price: v.compare_at_price,
            in_stock: v.in_stock,
            selected: i == pick,
        })
        .collect();
    let chosen = variants.get(pick);
    let mut breadcrumbs = Vec::new();
    if let Some(c) = &product.category {
        let tree = cache::category_tree(state)?;
        // The path is the slugs from the root: /home/kitchen/knives.
        for s in c.path.split('/').filter(|s| !s.is_empty()) {
            if let Some(cv) = tree.by_slug(s) {
                breadcrumbs.push(Crumb {
                    name: cv.name.clone(),
                    slug: cv.slug.clone(),
                });
            }
        }
    }
    let related = match &product.category {
        Some(c) => cache::related(state, c.id)
            .await?
            .iter()
            .filter(|(id, _)| *id != product.id)
            .take(cache::RELATED_LEN - 1)
            .map(|(_, card)| card.clone())
            .collect(),
        None => Vec::new(),
    };
    let canonical_path = format!("/p/{}", product.slug);
    let url = format!("{}{canonical_path}", state.config.public_url());
    let base = state.config.public_url();
    Ok(ProductPage {
        ld: ld_json(state, &product, &url),
        selected_price: chosen.map(|v| v.price).or(product.price),
        selected_compare_at: chosen.and_then(|v| v.compare_at_price),
        selected_in_stock: chosen.is_some_and(|v| v.in_stock),
        selected_variant: chosen.map(|v| v.id.clone()).unwrap_or_default(),
        main_image: product.images.first().cloned(),
        more_images: product.images.iter().skip(1).cloned().collect(),
        og_image: product.images.first().map(|i| format!("{base}{}", i.card)),
        meta_description: description_meta(&product.description),
        notify_email: email.to_string(),
        max_quantity: state.config.orders.max_line_quantity,
        notify_error: None,
        breadcrumbs,
        related,
        canonical_path,
        variants,
        product,
    })
}

async fn product_page(
    State(state): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    Query(q): Query<VariantQuery>,
) -> PageResult {
    // Rendered once per store generation for everyone who sees the same page, each
    // viewer's own token, cart count and email filled in (`product_cache.rs`).
    if let Some(kept) = product_cache::kept(&state, &page, &slug, q.variant.as_deref()).await? {
        viewed(&state, &page, kept.id);
        return Ok(kept.response(&state, &page.viewer));
    }
    let ctx = product_ctx(
        &state,
        page.principal(),
        &page.viewer.email,
        &slug,
        q.variant.as_deref(),
    )
    .await?;
    viewed(&state, &page, ctx.product.id);
    render(&state, &page, TEMPLATE, ctx)
}

pub(super) const TEMPLATE: &str = "storefront/product.html";

fn viewed(state: &AppState, page: &Page, id: crate::services::catalog::model::ProductId) {
    state.telemetry.record(Event::ProductViewed {
        product_id: id.to_string(),
        user_id: page.principal().map(|p| p.user_id.to_string()),
        session_id: Some(page.viewer.visitor.clone()),
        timestamp: state.clock.now(),
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyForm {
    email: String,
    #[serde(default)]
    variant_id: Option<String>,
}

async fn notify(
    State(state): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<NotifyForm>,
) -> PageResult {
    let (product, _) = queries::product_for(&state, page.principal(), &slug)?;
    let variant = match form.variant_id.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<uuid::Uuid>()
                .map(crate::services::catalog::model::VariantId)
                .map_err(|_| WebError::status(StatusCode::BAD_REQUEST, "errors.bad_form"))?,
        ),
        None => None,
    };
    let back = format!(
        "/p/{}{}",
        product.slug,
        variant
            .map(|v| format!("?variant={}", urlencode(&v.to_string())))
            .unwrap_or_default()
    );
    let user = page.principal().map(|p| p.user_id);
    match back_in_stock::sign_up(&state, product.id, variant, &form.email, user).await {
        Ok(_) => Ok(redirect(
            &state,
            &back,
            Flash::success(state.web.i18n.t("product.notify_done")),
        )),
        Err(Error::Validation(_)) => {
            let mut ctx = product_ctx(
                &state,
                page.principal(),
                &page.viewer.email,
                &slug,
                form.variant_id.as_deref(),
            )
            .await?;
            ctx.notify_email = form.email;
            ctx.notify_error = Some(state.web.i18n.t("product.notify_bad_email"));
            let mut res = render(&state, &page, "storefront/product.html", ctx)?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(Error::Conflict { .. }) => Ok(redirect(
            &state,
            &back,
            Flash::info(state.web.i18n.t("product.notify_in_stock")),
        )),
        Err(e) => Err(e.into()),
    }
}
