//! The catalog's JSON routes under /api/v1 (`router()`) and the `/media/...` files
//! (`media_router()`). Handlers only translate HTTP (headers, status codes, multipart)
//! into calls to the service; they never open a table.

use super::input::{
    CategoryInput, CategoryUpdate, InventoryInput, ProductInput, ProductUpdate, WarehouseInput,
};
use super::media::MediaError;
use super::model::{CategoryId, ProductId, Warehouse};
use super::queries::{self, CategoryView, InventoryView, ListQuery, ProductSummary, ProductView};
use crate::app::AppState;
use crate::auth::{Admin, MaybePrincipal, Principal};
use crate::error::{Error, Result};
use crate::http::{Json, Path, Problem, Query};
use crate::services::{Page, PageQuery};
use crate::store::cache::Generation;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list_categories).post(create_category))
        .route(
            "/categories/{id}",
            get(get_category)
                .put(update_category)
                .delete(delete_category),
        )
        .route("/categories/{id}/products", get(category_products))
        .route("/products", get(list_products).post(create_product))
        .route(
            "/products/{id}",
            get(get_product).put(update_product).delete(delete_product),
        )
        .route(
            "/products/{id}/images",
            // The configured image limit is checked while reading; the server-wide body
            // limit still applies on top.
            post(upload_image).layer(DefaultBodyLimit::disable()),
        )
        .route("/vendor/products", get(vendor_products))
        .route(
            "/vendor/warehouses",
            get(list_warehouses).post(create_warehouse),
        )
        .route("/inventory/{id}", get(get_inventory).put(put_inventory))
}

/// `/media/{file}`: content-addressed images, cacheable forever.
pub fn media_router() -> Router<AppState> {
    Router::new().route("/media/{file}", get(media))
}

#[derive(Serialize)]
struct Items<T> {
    items: Vec<T>,
}

async fn list_categories(State(state): State<AppState>) -> Result<Json<Items<CategoryView>>> {
    Ok(Json(Items {
        items: queries::categories(&state)?,
    }))
}

async fn get_category(
    State(state): State<AppState>,
    Path(id): Path<CategoryId>,
) -> Result<Json<CategoryView>> {
    Ok(Json(queries::category(&state, id)?))
}

async fn create_category(
    State(state): State<AppState>,
    Admin(p): Admin,
    Json(input): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryView>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::create_category(&state, &p, input).await?),
    ))
}

async fn update_category(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<CategoryId>,
    Json(input): Json<CategoryUpdate>,
) -> Result<Json<CategoryView>> {
    Ok(Json(super::update_category(&state, &p, id, input).await?))
}

async fn delete_category(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<CategoryId>,
) -> Result<StatusCode> {
    super::delete_category(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn category_products(
    State(state): State<AppState>,
    Path(id): Path<CategoryId>,
    Query(mut q): Query<ListQuery>,
) -> Result<Response> {
    if q.category.is_some() {
        return Err(Error::invalid(
            "category",
            "not_allowed",
            "the category is in the path",
        ));
    }
    q.category = Some(id.to_string());
    list_json(&state, q)
}

async fn list_products(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    list_json(&state, q)
}

/// A public product list as JSON, kept until the next write (see `CatalogState`).
fn list_json(state: &AppState, q: ListQuery) -> Result<Response> {
    let lists = &state.catalog.lists;
    let at = Generation::now(&state.store);
    let body = match lists.get(at, &q) {
        Some(kept) => kept,
        None => {
            let key = q.clone();
            let body = std::sync::Arc::new(to_json(&queries::list(state, q)?)?);
            lists.put(at, key, body.clone());
            body
        }
    };
    Ok(json_response(Bytes::clone(&body)))
}

fn to_json(v: &impl Serialize) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(v).map_err(Error::internal)?))
}

fn json_response(body: Bytes) -> Response {
    let json = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json)], body).into_response()
}

async fn vendor_products(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ProductSummary>>> {
    Ok(Json(queries::vendor_products(&state, &p, q)?))
}

async fn create_product(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<ProductInput>,
) -> Result<Response> {
    let view = super::create_product(&state, &p, input).await?;
    let location = format!("/api/v1/products/{}", view.id);
    let mut r = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `"3.7"` (an ETag this API gave) or `3`: the first number is the version asked for.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| Error::BadRequest("If-Match must be an ETag this API gave out".into()))
}

async fn get_product(
    State(state): State<AppState>,
    MaybePrincipal(p): MaybePrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let product_json = || -> Result<(Bytes, String)> {
        let (view, etag) = queries::product_for(&state, p.as_ref(), &key)?;
        Ok((to_json(&view)?, etag))
    };
    let (body, etag) = if p.is_none() && key.len() <= 256 {
        let kept = &state.catalog.products;
        let at = Generation::now(&state.store);
        match kept.get(at, &key) {
            Some(hit) => (*hit).clone(),
            None => {
                let made = product_json()?;
                kept.put(at, key.clone(), std::sync::Arc::new(made.clone()));
                made
            }
        }
    } else {
        product_json()?
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_response(body)
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    // Drafts and per-viewer visibility: shared caches must not keep it.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(r)
}

async fn update_product(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ProductId>,
    headers: HeaderMap,
    Json(input): Json<ProductUpdate>,
) -> Result<Json<ProductView>> {
    let expected = if_match(&headers)?;
    Ok(Json(
        super::update_product(&state, &p, id, input, expected).await?,
    ))
}

async fn delete_product(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ProductId>,
) -> Result<StatusCode> {
    super::archive_product(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_warehouses(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Items<Warehouse>>> {
    Ok(Json(Items {
        items: super::warehouses(&state, &p)?,
    }))
}

async fn create_warehouse(
    State(state): State<AppState>,
    p: Principal,
    Json(input): Json<WarehouseInput>,
) -> Result<(StatusCode, Json<Warehouse>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::create_warehouse(&state, &p, input).await?),
    ))
}

fn inventory_response(view: InventoryView) -> Response {
    let etag = format!("\"{}\"", view.version);
    let mut r = Json(view).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

async fn get_inventory(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ProductId>,
) -> Result<Response> {
    Ok(inventory_response(queries::inventory(&state, &p, id)?))
}

async fn put_inventory(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ProductId>,
    headers: HeaderMap,
    Json(input): Json<InventoryInput>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(inventory_response(
        super::set_inventory(&state, &p, id, input, expected).await?,
    ))
}

/// Multipart with a `file` part (the image) and an optional `alt` part.
async fn upload_image(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<ProductId>,
    mut form: Multipart,
) -> std::result::Result<(StatusCode, Json<ProductView>), Problem> {
    let limit = state.config.catalog.image_max_bytes;
    let mut file: Option<Vec<u8>> = None;
    let mut alt = String::new();
    while let Some(mut field) = form.next_field().await.map_err(multipart_problem)? {
        match field.name() {
            Some("file") => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
                    if buf.len() + chunk.len() > limit {
                        return Err(media_problem(MediaError::TooLarge { limit }));
                    }
                    buf.extend_from_slice(&chunk);
                }
                file = Some(buf);
            }
            Some("alt") => alt = field.text().await.map_err(multipart_problem)?,
            other => {
                return Err(Problem::from(&Error::invalid(
                    other.unwrap_or("part"),
                    "unknown_field",
                    "send a `file` part and optionally an `alt` part",
                )));
            }
        }
    }
    let bytes = file.ok_or_else(|| {
        Problem::from(&Error::invalid(
            "file",
            "required",
            "send the image as a `file` part",
        ))
    })?;
    let view = super::media::attach(&state, &p, id, bytes, alt)
        .await
        .map_err(media_problem)?;
    Ok((StatusCode::CREATED, Json(view)))
}

fn media_problem(e: MediaError) -> Problem {
    match e {
        MediaError::TooLarge { limit } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("images may be at most {limit} bytes"),
        ),
        MediaError::Unsupported => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "only JPEG, PNG, WebP and GIF images are accepted (judged by content, not name)",
        ),
        MediaError::Other(e) => Problem::from(&e),
    }
}

fn multipart_problem(e: axum::extract::multipart::MultipartError) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the upload is larger than this server accepts",
        )
    } else {
        Problem::from(&Error::BadRequest(format!(
            "the multipart body could not be read: {}",
            e.body_text()
        )))
    }
}

async fn media(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response> {
    let (bytes, content_type) = super::media::read(&state, &file).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}
