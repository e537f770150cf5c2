//! Orders, wallet and cards pages through the browser: an order paid from the wallet is
//! listed with its timeline, cancelled from its page with the refund back in the wallet;
//! another customer's order is a 404; a delivered line is asked back; the wallet topped
//! up with test cards (including the confirm step); saved cards removed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::orders::Shop;
use crate::payments::pay_app;
use crate::users::{PASSWORD, json};
use crate::web_account::{assert_see_other, post_from, register, sign_in};
use crate::web_client::{Browser, assert_clean, input_value};
use reqwest::StatusCode;
use serde_json::json;

/// A buyer with 100.00 in the wallet, signed in on a browser, with one paid order of a
/// knife (20.00) and a board (35.00) from two vendors. Returns the order id.
async fn paid_order(s: &Shop, b: &mut Browser, email: &str) -> (String, String) {
    let (_, token) = s.buyer(email, 10_000).await;
    assert!(s.add(&token, &s.knife, 1).await.status().is_success());
    assert!(s.add(&token, &s.board, 1).await.status().is_success());
    let r = s.checkout(&token, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = json(r).await;
    assert_eq!(a["order"]["status"], "paid", "{a}");
    sign_in(b, email, PASSWORD).await;
    (a["order"]["id"].as_str().unwrap().to_string(), token)
}

#[tokio::test]
async fn an_order_is_listed_cancelled_and_refunded_to_the_wallet() {
    let s = Shop::new(5).await;
    let mut b = Browser::new(&s.m.app);
    let (oid, _) = paid_order(&s, &mut b, "buyer@example.com").await;

    let wallet = b.get("/account/wallet").await;
    wallet.assert_page("wallet");
    // 100.00 − (20.00 + 35.00 + 2 × 4.90 shipping) = 35.20
    assert!(wallet.body.contains("€35.20"), "{}", wallet.body);
    assert!(
        wallet
            .body
            .contains("Adding money by card is not available")
    );

    let list = b.get("/account/orders").await;
    list.assert_page("orders");
    assert!(
        list.body
            .contains(&format!("href=\"/account/orders/{oid}\""))
    );
    assert!(list.body.contains("Paid") && list.body.contains("€64.80"));

    let page = b.get(&format!("/account/orders/{oid}")).await;
    page.assert_page("order");
    for needle in [
        "Knife",
        "Board",
        "Parcel 1 of 2",
        "sold by Alpha Goods",
        "sold by Beta Wares",
        "href=\"/p/",
        "Waiting for payment",
        "€64.80",
        "Ada Buyer",
    ] {
        assert!(page.body.contains(needle), "{needle}");
    }
    assert!(page.body.contains("Cancel the order"));
    assert!(
        !page.body.contains("Ask for a return"),
        "nothing delivered yet"
    );

    // Another customer: the same 404 as for an order that does not exist.
    let mut eve = Browser::new(&s.m.app);
    register(&mut eve, "Eve", "eve@example.com").await;
    for path in [
        format!("/account/orders/{oid}"),
        "/account/orders/0190d9a0-0000-7000-8000-000000000000".into(),
        "/account/orders/not-an-id".into(),
    ] {
        let g = eve.get(&path).await;
        assert_eq!(g.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!g.body.contains("Knife"));
    }
    let g = post_from(
        &mut eve,
        "/account",
        &format!("/account/orders/{oid}/cancel"),
        &[("reason", "")],
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(s.order_record(&oid).status.as_str(), "paid", "untouched");
    assert!(
        eve.get("/account/orders")
            .await
            .body
            .contains("not placed an order yet")
    );

    // Without the CSRF token nothing happens.
    let g = b
        .post(&format!("/account/orders/{oid}/cancel"), &[("reason", "x")])
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN);
    assert_eq!(s.order_record(&oid).status.as_str(), "paid");

    let from = format!("/account/orders/{oid}");
    let g = post_from(
        &mut b,
        &from,
        &format!("{from}/cancel"),
        &[("reason", "changed my mind")],
    )
    .await;
    assert_see_other(&g, &from);
    let page = b.get(&from).await;
    page.assert_page("cancelled order");
    assert!(
        page.body.contains("€64.80 went back to your wallet."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Cancelled") && page.body.contains("changed my mind"));
    assert!(!page.body.contains("Cancel the order"));
    let wallet = b.get("/account/wallet").await;
    assert!(wallet.body.contains("€100.00"), "refund in the wallet");
    assert!(wallet.body.contains("+€64.80"));

    // Cancelling twice is refused with a message, not an error page.
    let g = post_from(&mut b, &from, &format!("{from}/cancel"), &[("reason", "")]).await;
    assert_eq!(g.status, StatusCode::SEE_OTHER);
    b.get(&from).await.assert_page("after second cancel");
}

#[tokio::test]
async fn a_delivered_line_can_be_asked_back_within_the_window() {
    let s = Shop::new(5).await;
    let mut b = Browser::new(&s.m.app);
    let (oid, token) = paid_order(&s, &mut b, "returns@example.com").await;
    let o = json(s.m.get(&format!("/api/v1/orders/{oid}"), &token).await).await;
    let sub = o["sub_orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["vendor_id"] == s.m.vendor_a_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for body in [
        json!({"status": "processing"}),
        json!({"status": "shipped", "carrier": "DHL", "tracking_number": "JD0001"}),
        json!({"status": "delivered"}),
    ] {
        assert_eq!(
            s.vendor_status(&s.m.vendor_a, &sub, body).await.status(),
            StatusCode::OK
        );
    }
    let from = format!("/account/orders/{oid}");
    let page = b.get(&from).await;
    page.assert_page("delivered order");
    assert!(
        page.body
            .contains("Shipped with DHL, tracking number JD0001")
    );
    assert!(page.body.contains("Return Knife"));
    assert!(
        !page.body.contains("Cancel the order"),
        "a shipped order cannot be cancelled"
    );
    let line = page.body.split("name=\"line\" value=\"").nth(1).unwrap();
    let line = line[..line.find('"').unwrap()].to_string();

    // No reason: refused, nothing asked.
    let g = post_from(
        &mut b,
        &from,
        &format!("{from}/return"),
        &[("line", &line), ("quantity", "1"), ("reason", "  ")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_clean(&g.body, "return refused");
    assert!(
        g.body
            .contains("Please write between 1 and 500 characters.")
    );
    assert!(
        g.body.contains("<details open>"),
        "the refused form is open"
    );
    let g = post_from(
        &mut b,
        &from,
        &format!("{from}/return"),
        &[("line", &line), ("quantity", "5"), ("reason", "too big")],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.order_record(&oid).sub_orders[0].returns.len()
            + s.order_record(&oid).sub_orders[1].returns.len(),
        0
    );

    let g = post_from(
        &mut b,
        &from,
        &format!("{from}/return"),
        &[
            ("line", &line),
            ("quantity", "1"),
            ("reason", "blade is dull"),
        ],
    )
    .await;
    assert_see_other(&g, &from);
    let page = b.get(&from).await;
    page.assert_page("return asked");
    assert!(
        page.body
            .contains("Your return request is sent to the seller.")
    );
    assert!(page.body.contains("Asked, waiting for the seller"));
    assert!(page.body.contains("blade is dull"));
    assert!(!page.body.contains("Return Knife"), "one return at a time");

    // After the window closes, no form is offered.
    s.m.app.state.clock.advance(time::Duration::days(40));
    let page = b.get(&from).await;
    assert!(!page.body.contains("Ask for a return"));
}

#[tokio::test]
async fn the_wallet_is_topped_up_with_test_cards_and_cards_are_saved_and_removed() {
    let app = pay_app().await;
    let mut b = Browser::new(&app);
    register(&mut b, "Tess", "tess@example.com").await;
    let wallet = b.get("/account/wallet").await;
    wallet.assert_page("wallet");
    assert!(
        wallet
            .body
            .contains("TEST card gateway: no real money moves")
    );
    assert!(wallet.body.contains("€0.00"));
    assert!(wallet.body.contains("No movements yet."));

    let topup = |amount: &'static str, number: &'static str, save: bool| {
        let mut f = vec![
            ("amount", amount),
            ("method_id", ""),
            ("card_number", number),
            ("exp_month", "12"),
            ("exp_year", "2040"),
            ("cvc", "123"),
        ];
        if save {
            f.push(("save_card", "yes"));
        }
        f
    };
    for (form, needle) in [
        (
            topup("lots", "4242424242424242", false),
            "Enter an amount like 25 or 25.50.",
        ),
        (
            topup("0.50", "4242424242424242", false),
            "outside what is allowed",
        ),
        (
            topup("25", "4242424242424241", false),
            "This card number is not valid.",
        ),
    ] {
        let g = post_from(&mut b, "/account/wallet", "/account/wallet/topup", &form).await;
        assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY, "{needle}");
        assert_clean(&g.body, needle);
        assert!(g.body.contains(needle), "{needle}");
        assert!(
            !g.body.contains("424242424242"),
            "the card number is not written back"
        );
    }
    let mut g = b
        .post(
            "/account/wallet/topup",
            &topup("25", "4242424242424242", false),
        )
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert!(b.get("/account/wallet").await.body.contains("€0.00"));

    // The same form sent twice (a double click): one payment, the same answer twice.
    let form_page = b.get("/account/wallet").await;
    let key = input_value(&form_page.body, "idempotency_key").unwrap();
    let csrf = form_page.csrf();
    let mut form = vec![("csrf", csrf.as_str()), ("idempotency_key", key.as_str())];
    form.extend(topup("25.50", "4242 4242 4242 4242", true));
    for _ in 0..2 {
        g = b.post("/account/wallet/topup", &form).await;
        assert_see_other(&g, "/account/wallet");
        let wallet = b.get("/account/wallet").await;
        assert!(
            wallet
                .body
                .contains("€25.50 was added to your wallet. (Test gateway")
        );
    }
    let wallet = b.get("/account/wallet").await;
    assert_eq!(wallet.body.matches("+€25.50").count(), 1, "charged once");
    assert!(wallet.body.contains("€25.50</strong>"));
    // The same key with other details is refused, and charges nothing.
    form[2] = ("amount", "99");
    g = b.post("/account/wallet/topup", &form).await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(g.body.contains("already sent with other details"));

    // Declined: said so, nothing added.
    g = post_from(
        &mut b,
        "/account/wallet",
        "/account/wallet/topup",
        &topup("10", "4000000000000002", false),
    )
    .await;
    assert_see_other(&g, "/account/wallet");
    let wallet = b.get("/account/wallet").await;
    assert!(
        wallet
            .body
            .contains("The payment did not go through: the card was declined.")
    );

    // The confirm step: a wrong code fails it, the right one completes another.
    g = post_from(
        &mut b,
        "/account/wallet",
        "/account/wallet/topup",
        &topup("10", "4000000000003220", false),
    )
    .await;
    assert_eq!(g.status, StatusCode::SEE_OTHER);
    let confirm = g.location().unwrap();
    assert!(confirm.starts_with("/account/wallet/topup/"));
    let page = b.get(&confirm).await;
    page.assert_page("confirm step");
    assert!(page.body.contains("Test gateway: the code is 123456."));
    let mut g = post_from(&mut b, &confirm, &confirm, &[("code", "")]).await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    g = post_from(&mut b, &confirm, &confirm, &[("code", "000000")]).await;
    assert_see_other(&g, "/account/wallet");
    assert!(
        b.get("/account/wallet")
            .await
            .body
            .contains("did not go through")
    );
    assert_see_other(&b.get(&confirm).await, "/account/wallet");

    g = post_from(
        &mut b,
        "/account/wallet",
        "/account/wallet/topup",
        &topup("10", "4000000000003220", false),
    )
    .await;
    let confirm = g.location().unwrap();
    let mut eve = Browser::new(&app);
    register(&mut eve, "Eve", "eve@example.com").await;
    assert_eq!(
        eve.get(&confirm).await.status,
        StatusCode::NOT_FOUND,
        "not Eve's payment"
    );
    g = post_from(&mut b, &confirm, &confirm, &[("code", "123456")]).await;
    assert_see_other(&g, "/account/wallet");
    let wallet = b.get("/account/wallet").await;
    assert!(wallet.body.contains("€35.50"), "{}", wallet.body);

    // The saved card: paying with it, then removing it.
    let cards = b.get("/account/cards").await;
    cards.assert_page("cards");
    assert!(cards.body.contains("ending in 4242, expires 12/2040"));
    assert!(cards.body.contains("Test card"));
    let remove = cards.body.split("action=\"/account/cards/").nth(1).unwrap();
    let id = remove[..remove.find('/').unwrap()].to_string();
    g = post_from(
        &mut b,
        "/account/wallet",
        "/account/wallet/topup",
        &[("amount", "5"), ("method_id", &id)],
    )
    .await;
    assert_see_other(&g, "/account/wallet");
    assert!(b.get("/account/wallet").await.body.contains("€40.50"));

    let g = post_from(
        &mut eve,
        "/account/cards",
        &format!("/account/cards/{id}/remove"),
        &[],
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND, "not Eve's card");
    let g = post_from(
        &mut b,
        "/account/cards",
        &format!("/account/cards/{id}/remove"),
        &[],
    )
    .await;
    assert_see_other(&g, "/account/cards");
    let cards = b.get("/account/cards").await;
    assert!(cards.body.contains("The card is removed.") && cards.body.contains("no saved card"));

    // A card saved from the cards page.
    let g = post_from(
        &mut b,
        "/account/cards",
        "/account/cards",
        &[
            ("card_number", "5555555555554444"),
            ("exp_month", "13"),
            ("exp_year", "2040"),
            ("cvc", "123"),
        ],
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    let g = post_from(
        &mut b,
        "/account/cards",
        "/account/cards",
        &[
            ("card_number", "5555555555554444"),
            ("exp_month", "1"),
            ("exp_year", "2041"),
            ("cvc", "123"),
        ],
    )
    .await;
    assert_see_other(&g, "/account/cards");
    assert!(
        b.get("/account/cards")
            .await
            .body
            .contains("ending in 4444, expires 01/2041")
    );
}
