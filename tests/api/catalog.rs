//! The catalog through HTTP: categories, product CRUD by their owner, what other vendors
//! and customers cannot do, validation, listing filters/sorts/cursors, ETags. Shared
//! helpers (`Market`, `product_body`, `events`) for the other `catalog_*` modules live here.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use crate::helpers::TestApp;
use crate::users::{self, field_errors, json, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use souk::log::event::Envelope;
use souk::store::tables::OUTBOX_SEQ_TO_EVENT;

/// A marketplace with an admin, two vendors, a customer and a category tree
/// `home > kitchen > knives` plus `garden`.
pub struct Market {
    pub app: TestApp,
    pub admin: String,
    pub vendor_a: String,
    pub vendor_a_id: String,
    pub vendor_b: String,
    pub vendor_b_id: String,
    pub customer: String,
    pub home: String,
    pub kitchen: String,
    pub knives: String,
    pub garden: String,
}

impl Market {
    pub async fn new() -> Market {
        let app = users::app().await;
        let admin = users::admin(&app).await;
        let (vendor_a, vendor_a_id) = vendor(&app, &admin, "a@example.com", "Alpha Goods").await;
        let (vendor_b, vendor_b_id) = vendor(&app, &admin, "b@example.com", "Beta Wares").await;
        let (_, customer, _) = users::user(&app, "c@example.com").await;
        let mut m = Market {
            app,
            admin,
            vendor_a,
            vendor_a_id,
            vendor_b,
            vendor_b_id,
            customer,
            home: String::new(),
            kitchen: String::new(),
            knives: String::new(),
            garden: String::new(),
        };
        m.home = m.category("Home", None).await;
        m.kitchen = m.category("Kitchen", Some(&m.home.clone())).await;
        m.knives = m.category("Knives", Some(&m.kitchen.clone())).await;
        m.garden = m.category("Garden", None).await;
        m
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        users::send_auth(&self.app, method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        users::get_auth(&self.app, path, token).await
    }

    pub async fn category(&self, name: &str, parent: Option<&str>) -> String {
        let r = self
            .send(
                Method::POST,
                "/api/v1/categories",
                &self.admin,
                Some(json!({"name": name, "parent": parent})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        json(r).await["id"].as_str().unwrap().to_string()
    }

    /// Creates a product as `token`; returns its JSON.
    pub async fn product(&self, token: &str, body: Value) -> Value {
        let r = self
            .send(Method::POST, "/api/v1/products", token, Some(body))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        json(r).await
    }

    pub async fn active_product(&self, title: &str, sku: &str, price: i64) -> Value {
        let mut b = product_body(title, &self.knives, sku, price);
        b["status"] = json!("active");
        self.product(&self.vendor_a, b).await
    }

    pub fn events(&self) -> Vec<Envelope> {
        events(&self.app)
    }
}

/// Registers a user, makes them a vendor's owner, logs in again; (token, vendor id).
pub async fn vendor(app: &TestApp, admin: &str, email: &str, name: &str) -> (String, String) {
    let (uid, _, _) = users::user(app, email).await;
    let r = users::send_auth(
        app,
        Method::POST,
        "/api/v1/admin/vendors",
        admin,
        Some(json!({"name": name, "owner_user_id": uid})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let vid = json(r).await["id"].as_str().unwrap().to_string();
    let t = users::login(app, email, users::PASSWORD).await;
    (t["access_token"].as_str().unwrap().to_string(), vid)
}

pub fn product_body(title: &str, category: &str, sku: &str, price: i64) -> Value {
    json!({
        "title": title,
        "description": "A fine thing.\n\nMade by hand.",
        "category_id": category,
        "brand": "Acme",
        "attributes": {"material": "steel"},
        "variants": [{"sku": sku, "options": {"size": "M"}, "price": {"amount": price, "currency": "EUR"}, "weight_grams": 250}]
    })
}

/// Every event committed so far, in outbox order.
pub fn events(app: &TestApp) -> Vec<Envelope> {
    let rtx = app.state.store.read().unwrap();
    let Ok(t) = rtx.open_table(OUTBOX_SEQ_TO_EVENT) else {
        return Vec::new();
    };
    use redb::ReadableTable;
    t.iter()
        .unwrap()
        .map(|r| serde_json::from_slice(r.unwrap().1.value()).unwrap())
        .collect()
}

pub fn of_type<'a>(events: &'a [Envelope], name: &str) -> Vec<&'a Envelope> {
    events.iter().filter(|e| e.type_name() == name).collect()
}

pub fn payload(e: &Envelope) -> Value {
    serde_json::to_value(e).unwrap()["payload"].clone()
}

#[tokio::test]
async fn owner_creates_reads_updates_and_archives_a_product() {
    let m = Market::new().await;
    let p = m
        .product(
            &m.vendor_a,
            product_body("Chef's Knife <Pro>", &m.knives, "KN-1", 4999),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["slug"], "chef-s-knife-pro");
    assert_eq!(p["status"], "draft");
    assert_eq!(p["price"], json!({"amount": 4999, "currency": "EUR"}));
    assert_eq!(p["vendor"]["name"], "Alpha Goods");
    assert_eq!(p["category"]["path"], "/home/kitchen/knives");
    assert_eq!(
        p["description_html"],
        "<p>A fine thing.</p><p>Made by hand.</p>"
    );
    assert_eq!(p["stock_status"], "out_of_stock");

    // A draft is its vendor's: customers and guests do not see it.
    problem(
        m.get(&format!("/api/v1/products/{id}"), &m.customer).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        m.app.get(&format!("/api/v1/products/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list = json(m.app.get("/api/v1/products").await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"status": "active", "title": "Chef's Knife"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = json(r).await;
    assert_eq!(p["title"], "Chef's Knife");
    assert_eq!(
        p["slug"], "chef-s-knife-pro",
        "the slug stays unless changed"
    );
    assert_eq!(p["version"], 2);

    // Now everyone sees it, by id and by slug, in lists and in category counts.
    let r = m.app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = m
        .app
        .request(Method::GET, &format!("/api/v1/products/{id}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let by_slug = json(m.app.get("/api/v1/products/chef-s-knife-pro").await).await;
    assert_eq!(by_slug["id"], id);
    let list = json(m.app.get("/api/v1/products").await).await;
    assert_eq!(list["items"][0]["id"], id);
    let tree = json(m.app.get("/api/v1/categories").await).await;
    let count = |slug: &str| {
        tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["slug"] == slug)
            .unwrap()["product_count"]
            .clone()
    };
    assert_eq!(
        (
            count("home"),
            count("kitchen"),
            count("knives"),
            count("garden")
        ),
        (json!(1), json!(1), json!(1), json!(0))
    );

    // A change makes the old ETag stale; If-Match with it is refused.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            Some(json!({"brand": null})),
        )
        .await;
    assert_eq!(json(r).await["brand"], Value::Null);
    let r = m
        .app
        .request(Method::GET, &format!("/api/v1/products/{id}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = m
        .app
        .request(Method::PUT, &format!("/api/v1/products/{id}"))
        .bearer_auth(&m.vendor_a)
        .header("if-match", &etag)
        .json(&json!({"title": "Lost update"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PRECONDITION_FAILED, "stale_version").await;

    // Delete archives: out of lists and counts, still readable for old orders.
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list = json(m.app.get("/api/v1/products").await).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let list = json(
        m.app
            .get(&format!("/api/v1/categories/{}/products", m.home))
            .await,
    )
    .await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let p = json(m.app.get(&format!("/api/v1/products/{id}")).await).await;
    assert_eq!(p["status"], "archived");
    let tree = json(m.app.get("/api/v1/categories").await).await;
    assert!(
        tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["product_count"] == 0)
    );
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/products/{id}"),
            &m.vendor_a,
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "archiving twice is harmless"
    );

    let ev = m.events();
    assert_eq!(of_type(&ev, "Product.Created").len(), 1);
    assert_eq!(
        of_type(&ev, "Product.Archived").len(),
        1,
        "archived once, even if deleted twice"
    );
    assert_eq!(
        of_type(&ev, "Product.Updated").len(),
        3,
        "two edits and the archival"
    );
}

#[tokio::test]
async fn other_vendors_and_customers_cannot_write() {
    let m = Market::new().await;
    let p = m.active_product("Paring Knife", "PK-1", 1500).await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/api/v1/products/{id}");
    let before = json(m.app.get(&path).await).await;

    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PUT,
            path.clone(),
            Some(json!({"title": "Mine now"})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::GET, format!("/api/v1/inventory/{id}"), None),
        (
            Method::PUT,
            format!("/api/v1/inventory/{id}"),
            Some(json!({"version": 0, "levels": []})),
        ),
    ];
    for (method, p, body) in &writes {
        let r = m.send(method.clone(), p, &m.vendor_b, body.clone()).await;
        problem(r, StatusCode::NOT_FOUND, "not_found").await;
        let r = m.send(method.clone(), p, &m.customer, body.clone()).await;
        assert!(
            matches!(r.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{method} {p}: {}",
            r.status()
        );
        let r = m.app.request(method.clone(), p).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = image_upload(&m.app, &m.vendor_b, id, "k.png", &tiny_png()).await;
    problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = image_upload(&m.app, &m.customer, id, "k.png", &tiny_png()).await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Customers cannot create products, categories or warehouses.
    let r = m
        .send(
            Method::POST,
            "/api/v1/products",
            &m.customer,
            Some(product_body("X", &m.knives, "X-1", 1)),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = m
        .send(
            Method::POST,
            "/api/v1/categories",
            &m.customer,
            Some(json!({"name": "Mine"})),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = m
        .send(
            Method::POST,
            "/api/v1/categories",
            &m.vendor_a,
            Some(json!({"name": "Mine"})),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = m
        .send(
            Method::POST,
            "/api/v1/vendor/warehouses",
            &m.customer,
            Some(json!({"name": "W", "code": "W1"})),
        )
        .await;
    problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let after = json(m.app.get(&path).await).await;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(of_type(&m.events(), "Product.Updated").len(), 0);

    // The admin may change any product.
    let r = m
        .send(
            Method::PUT,
            &path,
            &m.admin,
            Some(json!({"title": "Curated"})),
        )
        .await;
    assert_eq!(json(r).await["title"], "Curated");
}

#[tokio::test]
async fn category_tree_moves_cycles_and_deletes() {
    let m = Market::new().await;
    let tree = json(m.app.get("/api/v1/categories").await).await;
    let paths: Vec<_> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["/garden", "/home", "/home/kitchen", "/home/kitchen/knives"]
    );

    // Moving home under its own grandchild would make a cycle.
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/categories/{}", m.home),
            &m.admin,
            Some(json!({"parent": m.knives})),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "category_cycle").await;
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/categories/{}", m.home),
            &m.admin,
            Some(json!({"parent": m.home})),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "category_cycle").await;

    // A product in knives; moving kitchen under garden re-lists it there.
    let p = m.active_product("Cleaver", "CL-1", 2500).await;
    let r = m
        .send(
            Method::PUT,
            &format!("/api/v1/categories/{}", m.kitchen),
            &m.admin,
            Some(json!({"parent": m.garden})),
        )
        .await;
    assert_eq!(json(r).await["path"], "/garden/kitchen");
    let in_garden = json(
        m.app
            .get(&format!("/api/v1/categories/{}/products", m.garden))
            .await,
    )
    .await;
    assert_eq!(in_garden["items"][0]["id"], p["id"]);
    let in_home = json(m.app.get("/api/v1/products?category=home").await).await;
    assert!(in_home["items"].as_array().unwrap().is_empty());

    // Not empty: subcategories, then a product (even archived).
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{}", m.kitchen),
            &m.admin,
            None,
        )
        .await;
    let b = problem(r, StatusCode::CONFLICT, "category_not_empty").await;
    assert!(b["detail"].as_str().unwrap().contains("subcategories"));
    let pid = p["id"].as_str().unwrap();
    m.send(
        Method::DELETE,
        &format!("/api/v1/products/{pid}"),
        &m.vendor_a,
        None,
    )
    .await;
    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{}", m.knives),
            &m.admin,
            None,
        )
        .await;
    let b = problem(r, StatusCode::CONFLICT, "category_not_empty").await;
    assert!(b["detail"].as_str().unwrap().contains("product"));

    let r = m
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{}", m.home),
            &m.admin,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        m.app.get(&format!("/api/v1/categories/{}", m.home)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Slugs are unique; a bad slug or an unknown parent is a 422.
    let r = m
        .send(
            Method::POST,
            "/api/v1/categories",
            &m.admin,
            Some(json!({"name": "Other", "slug": "garden"})),
        )
        .await;
    assert_eq!(
        field_errors(&problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await),
        [("slug".into(), "taken".into())]
    );
    let r = m
        .send(
            Method::POST,
            "/api/v1/categories",
            &m.admin,
            Some(json!({"name": "", "slug": "Bad Slug", "parent": m.home})),
        )
        .await;
    let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(
        field_errors(&b),
        [
            ("name".into(), "required".into()),
            ("slug".into(), "invalid_slug".into())
        ]
    );
    let r = m
        .send(
            Method::POST,
            "/api/v1/categories",
            &m.admin,
            Some(json!({"name": "Orphan", "parent": m.home})),
        )
        .await;
    assert_eq!(
        field_errors(&problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await),
        [("parent".into(), "unknown_category".into())]
    );
}

#[tokio::test]
async fn every_field_is_validated_and_nothing_is_stored() {
    let m = Market::new().await;
    m.active_product("First", "TAKEN-1", 100).await;
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"title": "", "category_id": m.knives, "variants": [{"sku": "A", "price": {"amount": -1, "currency": "EUR"}}]}),
            vec![
                ("title", "required"),
                ("variants[0].price.amount", "negative"),
            ],
        ),
        (
            json!({"title": "x".repeat(201), "slug": "Not A Slug", "category_id": m.knives, "brand": "", "variants": []}),
            vec![
                ("title", "too_long"),
                ("slug", "invalid_slug"),
                ("brand", "required"),
                ("variants", "required"),
            ],
        ),
        (
            json!({"title": "T", "category_id": m.knives, "variants": [
                {"sku": "A", "price": {"amount": 500, "currency": "EUR"}, "compare_at_price": {"amount": 499, "currency": "EUR"}},
                {"sku": "a", "price": {"amount": 1, "currency": "USD"}, "weight_grams": 2000000}
            ]}),
            vec![
                ("variants[0].compare_at_price.amount", "below_price"),
                ("variants[1].sku", "duplicate"),
                ("variants[1].price.currency", "wrong_currency"),
                ("variants[1].weight_grams", "too_large"),
            ],
        ),
        (
            json!({"title": "T", "category_id": "0190b5c4-0000-7000-8000-000000000000", "variants": [{"sku": "TAKEN-1", "price": {"amount": 1, "currency": "EUR"}}]}),
            vec![
                ("category_id", "unknown_category"),
                ("variants[0].sku", "sku_taken"),
            ],
        ),
        (
            json!({"title": "T", "category_id": m.knives, "status": "archived", "description": "bad \u{0} byte", "attributes": {"": "x"}, "variants": [{"sku": "a b", "price": {"amount": 1, "currency": "EUR"}}]}),
            vec![
                ("description", "invalid_characters"),
                ("attributes.", "required"),
                ("status", "not_allowed"),
                ("variants[0].sku", "invalid_sku"),
            ],
        ),
        (
            json!({"title": "T", "category_id": m.knives, "vendor_id": m.vendor_b_id, "variants": [{"sku": "B", "price": {"amount": 1, "currency": "EUR"}}]}),
            vec![("vendor_id", "not_allowed")],
        ),
        (
            json!({"title": "T", "category_id": m.knives, "id": "x", "variants": [{"sku": "B", "price": {"amount": 1, "currency": "EUR"}}]}),
            vec![("id", "unknown_field")],
        ),
        (
            json!({"title": "T", "category_id": m.knives, "variants": [{"sku": "B", "price": {"amount": 1.5, "currency": "EUR"}}]}),
            vec![("variants[0].price.amount", "invalid_type")],
        ),
        (
            json!({"title": "T", "slug": "first", "category_id": m.knives, "variants": [{"sku": "B", "price": {"amount": 1, "currency": "EUR"}}]}),
            vec![("slug", "taken")],
        ),
    ];
    for (body, want) in cases {
        let r = m
            .send(
                Method::POST,
                "/api/v1/products",
                &m.vendor_a,
                Some(body.clone()),
            )
            .await;
        let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let mut got = field_errors(&b);
        got.sort();
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{body}");
    }
    let mine = json(m.get("/api/v1/vendor/products", &m.vendor_a).await).await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "only the first product exists"
    );
    assert_eq!(of_type(&m.events(), "Product.Created").len(), 1);

    // Updates are validated the same way and also refuse fields nobody may set.
    let id = mine["items"][0]["id"].as_str().unwrap();
    for (body, field, code) in [
        (json!({"version": 9}), "version", "unknown_field"),
        (
            json!({"vendor_id": m.vendor_b_id}),
            "vendor_id",
            "unknown_field",
        ),
        (
            json!({"variants": [{"id": "0190b5c4-0000-7000-8000-000000000000", "sku": "Z", "price": {"amount": 1, "currency": "EUR"}}]}),
            "variants[0].id",
            "unknown_variant",
        ),
        (
            json!({"images": [{"id": "abc"}]}),
            "images[0].id",
            "unknown_image",
        ),
    ] {
        let r = m
            .send(
                Method::PUT,
                &format!("/api/v1/products/{id}"),
                &m.vendor_a,
                Some(body),
            )
            .await;
        let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(field_errors(&b), [(field.to_string(), code.to_string())]);
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let m = Market::new().await;
    let mut made = Vec::new();
    for i in 0..12i64 {
        let category = if i % 3 == 0 {
            &m.garden
        } else if i % 3 == 1 {
            &m.kitchen
        } else {
            &m.knives
        };
        let mut b = product_body(
            &format!("Item {:02}", 11 - i),
            category,
            &format!("SKU-{i}"),
            1000 + (i * 37) % 500,
        );
        b["status"] = json!("active");
        b["brand"] = json!(if i % 2 == 0 { "Acme" } else { "Bolt" });
        b["attributes"] = json!({"colour": if i < 6 { "red" } else { "blue" }});
        let token = if i == 11 { &m.vendor_b } else { &m.vendor_a };
        made.push(m.product(token, b).await);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let prices = |v: &Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["price"]["amount"].as_i64().unwrap())
            .collect()
    };

    // Newest first by default.
    let all = json(m.app.get("/api/v1/products?include_total=true").await).await;
    assert_eq!(all["total"], 12);
    let newest: Vec<String> = made
        .iter()
        .rev()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&all), newest);

    let asc = json(m.app.get("/api/v1/products?sort=price_asc").await).await;
    let p = prices(&asc);
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    let desc = json(m.app.get("/api/v1/products?sort=price_desc").await).await;
    let p = prices(&desc);
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    let by_name = json(m.app.get("/api/v1/products?sort=name").await).await;
    let names: Vec<_> = by_name["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.first().unwrap(), "Item 00");
    assert!(names.windows(2).all(|w| w[0] <= w[1]));

    // Category includes descendants: kitchen holds kitchen and knives.
    let kitchen = json(
        m.app
            .get(&format!(
                "/api/v1/categories/{}/products?include_total=true",
                m.kitchen
            ))
            .await,
    )
    .await;
    assert_eq!(kitchen["total"], 8);
    let home = json(
        m.app
            .get("/api/v1/products?category=home&include_total=true")
            .await,
    )
    .await;
    assert_eq!(home["total"], 8);
    let knives = json(
        m.app
            .get(&format!(
                "/api/v1/products?category={}&include_total=true",
                m.knives
            ))
            .await,
    )
    .await;
    assert_eq!(knives["total"], 4);

    // Filters combine.
    let q = "/api/v1/products?brand=acme&attributes=colour:red&include_total=true";
    assert_eq!(json(m.app.get(q).await).await["total"], 3);
    let q = format!(
        "/api/v1/products?vendor={}&include_total=true",
        m.vendor_b_id
    );
    assert_eq!(json(m.app.get(&q).await).await["total"], 1);
    let ranged = json(
        m.app
            .get("/api/v1/products?sort=price_asc&price_min=1100&price_max=1300&limit=200")
            .await,
    )
    .await;
    let p = prices(&ranged);
    assert!(
        !p.is_empty() && p.iter().all(|x| (1100..=1300).contains(x)),
        "{p:?}"
    );
    let ranged_newest = json(
        m.app
            .get("/api/v1/products?price_min=1100&price_max=1300&include_total=true")
            .await,
    )
    .await;
    assert_eq!(ranged_newest["total"].as_u64().unwrap() as usize, p.len());
    let in_stock = json(m.app.get("/api/v1/products?in_stock=true").await).await;
    assert!(
        in_stock["items"].as_array().unwrap().is_empty(),
        "no stock anywhere yet"
    );

    // Cursor pages cover everything exactly once, in every sort.
    for sort in ["newest", "price_asc", "price_desc", "name"] {
        let mut seen = Vec::new();
        let mut url = format!("/api/v1/products?sort={sort}&limit=5");
        loop {
            let page = json(m.app.get(&url).await).await;
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => url = format!("/api/v1/products?sort={sort}&limit=5&cursor={c}"),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!((seen.len(), sorted.len()), (12, 12), "{sort}");
    }

    // Bad parameters are 422s naming the parameter.
    for (q, field) in [
        ("limit=0", "limit"),
        ("sort=cheapest", "sort"),
        ("cursor=zzz", "cursor"),
        ("category=nowhere", "category"),
        ("colour=red", "colour"),
        ("price_min=5&price_max=1", "price_max"),
        ("attributes=colour", "attributes"),
    ] {
        let r = m.app.get(&format!("/api/v1/products?{q}")).await;
        let b = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(field_errors(&b)[0].0, field, "{q}");
    }
}

pub fn tiny_png() -> Vec<u8> {
    use std::io::Cursor;
    let img = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Uploads `bytes` as a multipart `file` part named `filename`.
pub async fn image_upload(
    app: &TestApp,
    token: &str,
    product: &str,
    filename: &str,
    bytes: &[u8],
) -> reqwest::Response {
    let boundary = "souk-test-boundary-7d1f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"alt\"\r\n\r\nA knife\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\ncontent-type: image/png\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    app.request(Method::POST, &format!("/api/v1/products/{product}/images"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}
