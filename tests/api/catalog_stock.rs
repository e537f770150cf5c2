//! Stock and media through HTTP and the reservation API: warehouses, versioned inventory
//! updates under concurrency, reservations that never oversell, image uploads judged by
//! content, the events each change emits, and suspended vendors' products disappearing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::catalog::{Market, image_upload, of_type, payload, tiny_png};
use crate::users::{field_errors, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::services::catalog::inventory::{self, ReserveLine};
use souk::services::catalog::model::{ProductId, VariantId};

async fn warehouse(m: &Market, token: &str, code: &str) -> String {
    let r = m
        .send(
            Method::POST,
            "/api/v1/vendor/warehouses",
            token,
            Some(json!({"name": format!("Depot {code}"), "code": code})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    json(r).await["id"].as_str().unwrap().to_string()
}

async fn set_stock(m: &Market, product: &str, version: u64, levels: Value) -> reqwest::Response {
    m.send(
        Method::PUT,
        &format!("/api/v1/inventory/{product}"),
        &m.vendor_a,
        Some(json!({"version": version, "levels": levels})),
    )
    .await
}

#[tokio::test]
async fn inventory_is_versioned_and_validated() {
    let m = Market::new().await;
    let p = m.active_product("Bread Knife", "BK-1", 3000).await;
    let id = p["id"].as_str().unwrap();
    let variant = p["variants"][0]["id"].as_str().unwrap();
    let w1 = warehouse(&m, &m.vendor_a, "ber-1").await;
    let w2 = warehouse(&m, &m.vendor_a, "HAM-1").await;
    let r = m
        .send(
            Method::POST,
            "/api/v1/vendor/warehouses",
            &m.vendor_a,
            Some(json!({"name": "Again", "code": "BER-1"})),
        )
        .await;
    assert_eq!(
        field_errors(&problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await),
        [("code".into(), "taken".into())]
    );
    let other = warehouse(&m, &m.vendor_b, "BER-1").await;
    let mine = json(m.get("/api/v1/vendor/warehouses", &m.vendor_a).await).await;
    let codes: Vec<_> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].clone())
        .collect();
    assert_eq!(codes, [json!("BER-1"), json!("HAM-1")]);

    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    assert_eq!(inv["version"], 0);
    assert_eq!(inv["levels"].as_array().unwrap().len(), 2);
    assert!(
        inv["levels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["on_hand"] == 0 && l["available"] == 0)
    );

    let r = set_stock(&m, id, 0, json!([{"variant_id": variant, "warehouse_id": w1, "on_hand": 4}, {"variant_id": variant, "warehouse_id": w2, "on_hand": 6}])).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let inv = json(r).await;
    assert_eq!(inv["version"], 1);
    assert_eq!(inv["levels"][0]["available"], 4);
    let shown = json(m.app.get(&format!("/api/v1/products/{id}")).await).await;
    assert_eq!(shown["stock_status"], "in_stock");
    assert_eq!(shown["variants"][0]["in_stock"], true);

    // Stale version, by body or If-Match: 409 and nothing changes.
    let r = set_stock(
        &m,
        id,
        0,
        json!([{"variant_id": variant, "warehouse_id": w1, "on_hand": 99}]),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "stale_version").await;
    let r = m
        .app
        .request(Method::PUT, &format!("/api/v1/inventory/{id}"))
        .bearer_auth(&m.vendor_a)
        .header("if-match", "\"0\"")
        .json(&json!({"levels": [{"variant_id": variant, "warehouse_id": w1, "on_hand": 99}]}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::CONFLICT, "stale_version").await;
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/inventory/{id}"),
            &m.vendor_a,
            Some(json!({"levels": []})),
        )
        .await;
    assert_eq!(
        field_errors(&problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await),
        [("version".into(), "required".into())]
    );

    // Negative, unknown variant, another vendor's warehouse, duplicates: 422 at the field.
    let r = set_stock(
        &m,
        id,
        1,
        json!([
            {"variant_id": variant, "warehouse_id": w1, "on_hand": -1},
            {"variant_id": "0190b5c4-0000-7000-8000-000000000000", "warehouse_id": w1, "on_hand": 1},
            {"variant_id": variant, "warehouse_id": other, "on_hand": 1},
            {"variant_id": variant, "warehouse_id": w1, "on_hand": 2}
        ]),
    )
    .await;
    let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        field_errors(&b),
        [
            ("levels[0].on_hand".into(), "out_of_range".into()),
            ("levels[1].variant_id".into(), "unknown_variant".into()),
            ("levels[2].warehouse_id".into(), "unknown_warehouse".into()),
            ("levels[3]".into(), "duplicate".into())
        ]
    );
    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    assert_eq!(
        (inv["version"].clone(), inv["levels"][0]["on_hand"].clone()),
        (json!(1), json!(4))
    );

    // Concurrent PUTs with the same version: exactly one wins.
    let mut handles = Vec::new();
    for n in 0..8 {
        let client = m.app.client.clone();
        let url = m.app.url(&format!("/api/v1/inventory/{id}"));
        let token = m.vendor_a.clone();
        let body = json!({"version": 1, "levels": [{"variant_id": variant, "warehouse_id": w1, "on_hand": 10 + n}]});
        handles.push(tokio::spawn(async move {
            client
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7
    );
    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    assert_eq!(inv["version"], 2);

    // Inventory.Updated once per changed level, with the design's fields.
    let ev = m.events();
    let updated = of_type(&ev, "Inventory.Updated");
    assert_eq!(updated.len(), 3, "two levels at first, one by the winner");
    let first = payload(updated[0]);
    assert_eq!(first["productId"], id);
    assert_eq!(first["warehouse"], w1.as_str());
    assert_eq!(first["quantity"], 4);
    assert_eq!(first["variantId"], variant);
    assert!(first["timestamp"].is_string());
    let back = of_type(&ev, "Product.BackInStock");
    assert_eq!(back.len(), 1, "from 0 to above 0 once");
    assert_eq!(payload(back[0])["variantId"], variant);
}

#[tokio::test]
async fn a_hundred_concurrent_reservations_on_ten_units() {
    let m = Market::new().await;
    let p = m.active_product("Santoku", "SA-1", 5000).await;
    let id = p["id"].as_str().unwrap();
    let variant = p["variants"][0]["id"].as_str().unwrap();
    let w1 = warehouse(&m, &m.vendor_a, "W1").await;
    let w2 = warehouse(&m, &m.vendor_a, "W2").await;
    let r = set_stock(&m, id, 0, json!([{"variant_id": variant, "warehouse_id": w1, "on_hand": 3}, {"variant_id": variant, "warehouse_id": w2, "on_hand": 7}])).await;
    assert_eq!(r.status(), StatusCode::OK);

    let pid: ProductId = id.parse().unwrap();
    let vid = VariantId(variant.parse().unwrap());
    let mut handles = Vec::new();
    for _ in 0..100 {
        let store = m.app.state.store.clone();
        let now = m.app.state.clock.now();
        handles.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    inventory::reserve(
                        tx,
                        &[ReserveLine {
                            product_id: pid,
                            variant_id: vid,
                            quantity: 1,
                        }],
                        now,
                    )
                })
                .await
        }));
    }
    let mut held = Vec::new();
    let mut refused = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(r) => held.push(r),
            Err(e) => {
                assert_eq!(e.code(), "out_of_stock");
                refused += 1;
            }
        }
    }
    assert_eq!((held.len(), refused), (10, 90));
    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    for l in inv["levels"].as_array().unwrap() {
        assert_eq!(l["available"], 0, "{l}");
        assert!(l["available"].as_i64().unwrap() >= 0);
    }
    assert_eq!(
        json(m.app.get(&format!("/api/v1/products/{id}")).await).await["stock_status"],
        "out_of_stock"
    );
    // The vendor cannot set on hand below what orders hold.
    let r = set_stock(
        &m,
        id,
        inv["version"].as_u64().unwrap(),
        json!([{"variant_id": variant, "warehouse_id": w1, "on_hand": 0}]),
    )
    .await;
    problem(r, StatusCode::CONFLICT, "below_reserved").await;

    // Release one: back in stock (event once); commit another: on hand drops.
    let before = of_type(&m.events(), "Product.BackInStock").len();
    let (a, b) = (held[0].id, held[1].id);
    let now = m.app.state.clock.now();
    m.app
        .state
        .store
        .write(move |tx| inventory::release(tx, a, "user:test", now))
        .await
        .unwrap();
    m.app
        .state
        .store
        .write(move |tx| inventory::release(tx, a, "user:test", now))
        .await
        .unwrap();
    m.app
        .state
        .store
        .write(move |tx| inventory::commit(tx, b, "user:test", now))
        .await
        .unwrap();
    let e = m
        .app
        .state
        .store
        .write(move |tx| inventory::commit(tx, a, "user:test", now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "reservation_closed");
    assert_eq!(
        of_type(&m.events(), "Product.BackInStock").len(),
        before + 1
    );
    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    let total = |k: &str| {
        inv["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l[k].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(
        (total("on_hand"), total("reserved"), total("available")),
        (9, 8, 1)
    );

    // All or nothing across lines: a second line that cannot be filled holds nothing.
    let other = m.active_product("Peeler", "PE-1", 500).await;
    let opid: ProductId = other["id"].as_str().unwrap().parse().unwrap();
    let ovid = VariantId(
        other["variants"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let e = m
        .app
        .state
        .store
        .write(move |tx| {
            inventory::reserve(
                tx,
                &[
                    ReserveLine {
                        product_id: pid,
                        variant_id: vid,
                        quantity: 1,
                    },
                    ReserveLine {
                        product_id: opid,
                        variant_id: ovid,
                        quantity: 1,
                    },
                ],
                now,
            )
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "out_of_stock");
    let inv = json(m.get(&format!("/api/v1/inventory/{id}"), &m.vendor_a).await).await;
    assert_eq!(
        inv["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["available"].as_i64().unwrap())
            .sum::<i64>(),
        1
    );
}

#[tokio::test]
async fn images_are_judged_by_content_and_served_immutable() {
    let m = Market::new().await;
    let p = m.active_product("Carving Knife", "CK-1", 6000).await;
    let id = p["id"].as_str().unwrap();
    let blobs = m.app.dir.path().join("blobs");

    // A text file named like an image: 415, nothing stored.
    let r = image_upload(
        &m.app,
        &m.vendor_a,
        id,
        "photo.png",
        b"just some text, honestly",
    )
    .await;
    problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let r = image_upload(
        &m.app,
        &m.vendor_a,
        id,
        "photo.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .await;
    problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert!(!blobs.exists());

    // The real thing: original and three variants, served with long-lived caching.
    let r = image_upload(&m.app, &m.vendor_a, id, "IMG_0001", &tiny_png()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let p = json(r).await;
    let img = &p["images"][0];
    assert_eq!(img["alt"], "A knife");
    for k in ["original", "thumbnail", "card", "full"] {
        let url = img[k].as_str().unwrap();
        assert!(url.starts_with("/media/"), "{url}");
        let r = m.app.get(url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let bytes = r.bytes().await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        match k {
            "original" => assert_eq!((ct.as_str(), decoded.width()), ("image/png", 300)),
            "thumbnail" => assert_eq!((ct.as_str(), decoded.width()), ("image/jpeg", 160)),
            _ => assert_eq!(
                (ct.as_str(), decoded.width()),
                ("image/jpeg", 300),
                "never enlarged"
            ),
        }
    }
    assert_eq!(
        m.app.get("/media/0000.png").await.status(),
        StatusCode::NOT_FOUND
    );
    let list = json(m.app.get("/api/v1/products").await).await;
    assert_eq!(list["items"][0]["image"]["thumbnail"], img["thumbnail"]);
    let ev = m.events();
    let updated = of_type(&ev, "Product.Updated");
    assert_eq!(updated.len(), 1);
    assert!(payload(updated[0])["changes"]["images"].is_array());

    // The same image twice is a conflict; dropping it through PUT works.
    let r = image_upload(&m.app, &m.vendor_a, id, "again.png", &tiny_png()).await;
    problem(r, StatusCode::CONFLICT, "duplicate_image").await;
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"images": []})),
        )
        .await;
    assert_eq!(json(r).await["images"], json!([]));
}

#[tokio::test]
async fn oversized_images_are_refused_with_413() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.auth.argon2_memory_kib = 64;
        c.auth.argon2_iterations = 1;
        c.catalog.image_max_bytes = 4096;
    })
    .await;
    let admin = crate::users::admin(&app).await;
    let (vendor, _) = crate::catalog::vendor(&app, &admin, "v@example.com", "Vee").await;
    let cat = json(
        crate::users::send_auth(
            &app,
            Method::POST,
            "/api/v1/categories",
            &admin,
            Some(json!({"name": "All"})),
        )
        .await,
    )
    .await;
    let body = crate::catalog::product_body("Big", cat["id"].as_str().unwrap(), "B-1", 100);
    let p = json(
        crate::users::send_auth(&app, Method::POST, "/api/v1/products", &vendor, Some(body)).await,
    )
    .await;
    let mut big = tiny_png();
    big.resize(10_000, 0);
    let r = image_upload(&app, &vendor, p["id"].as_str().unwrap(), "big.png", &big).await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(!app.dir.path().join("blobs").exists());
}

#[tokio::test]
async fn events_carry_the_design_fields_once_per_change() {
    let m = Market::new().await;
    let p = m.active_product("Fillet Knife", "FK-1", 4200).await;
    let id = p["id"].as_str().unwrap();
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"variants": [{"id": p["variants"][0]["id"], "sku": "FK-1", "price": {"amount": 3900, "currency": "EUR"}}]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A no-op update emits nothing.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"title": "Fillet Knife"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    m.send(
        Method::DELETE,
        &format!("/api/v1/products/{id}"),
        &m.vendor_a,
        None,
    )
    .await;

    let ev = m.events();
    let created = of_type(&ev, "Product.Created");
    assert_eq!(created.len(), 1);
    let c = payload(created[0]);
    assert_eq!(c["productId"], id);
    assert_eq!(c["vendorId"], m.vendor_a_id.as_str());
    assert_eq!(c["category"], m.knives.as_str());
    assert_eq!(c["price"], 4200);
    assert!(c["timestamp"].is_string());
    assert_eq!(created[0].topic, "products");
    assert_eq!(created[0].key, id);

    let updated = of_type(&ev, "Product.Updated");
    assert_eq!(updated.len(), 2, "the price change and the archival");
    let u = payload(updated[0]);
    assert_eq!(u["productId"], id);
    assert_eq!(u["changes"]["price"], 3900);
    assert!(u["changes"].get("title").is_none());
    let archived = of_type(&ev, "Product.Archived");
    assert_eq!(archived.len(), 1);
    assert_eq!(payload(archived[0])["vendorId"], m.vendor_a_id.as_str());
}

#[tokio::test]
async fn a_suspended_vendors_products_are_hidden_from_customers() {
    let m = Market::new().await;
    let p = m.active_product("Steak Knife", "SK-1", 900).await;
    let id = p["id"].as_str().unwrap().to_string();
    let vid: souk::auth::VendorId = m.vendor_a_id.parse().unwrap();
    m.app
        .state
        .store
        .write(move |tx| {
            let mut v = souk::services::vendors::store::get_in(tx, vid)?.unwrap();
            v.status = souk::services::vendors::model::VendorStatus::Suspended;
            souk::services::vendors::store::put(tx, &v)
        })
        .await
        .unwrap();
    problem(
        m.get(&format!("/api/v1/products/{id}"), &m.customer).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = json(m.app.get("/api/v1/products?include_total=true").await).await;
    assert_eq!(list["total"], 0);
    // Its own vendor still sees it, but cannot change the catalog while suspended.
    assert_eq!(
        m.get(&format!("/api/v1/products/{id}"), &m.vendor_a)
            .await
            .status(),
        StatusCode::OK
    );
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"title": "Still here"})),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
}
