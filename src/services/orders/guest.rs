//! Guest checkout and who may act on an order as its buyer. A guest's order belongs to a
//! guest identity derived from the email given at checkout; the guest proves it with an
//! access token shown once at checkout (only its hash is stored). A registered user whose
//! VERIFIED email is that address sees and handles those orders as their own: an
//! unverified address proves nothing, and the orders carry a name and a home address.

use super::checkout::{self, CheckoutAnswer, PaymentChoice, Placement};
use super::model::{Address, Order, OrderId};
use super::queries::{OrderView, view};
use super::store::{self, CartOwner};
use crate::app::AppState;
use crate::auth::{Principal, Role, UserId};
use crate::error::{Error, Result};
use crate::services::payments::gateway::CardInput;
use crate::services::payments::model::Method;
use crate::services::users::model::Email;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A guest's checkout: the email the order is sent to and owned by, where it goes, how it
/// is paid. Wallets need an account, so a guest pays by card, hosted page or cash on
/// delivery; saved payment methods are an account's too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestCheckout {
    pub email: String,
    pub shipping_address: Address,
    pub payment_method: Method,
    #[serde(default)]
    pub card: Option<CardInput>,
}

/// The identity a guest's orders belong to: a UUID (version 8) made from the normalised
/// email, so every guest order of one address shares it and a user whose verified email
/// it is can find them. It never equals a registered user's id (those are version 7).
pub fn guest_user_id(email: &Email) -> UserId {
    let digest = Sha256::digest(format!("souk:guest:{}", email.key()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    UserId(uuid::Builder::from_custom_bytes(b).into_uuid())
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new order access token: 256 random bits, URL-safe.
fn new_access_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Who acts on an order as its buyer.
#[derive(Debug, Clone)]
pub(crate) enum Buyer {
    /// A signed-in user: their own orders, plus guest orders of their verified email
    /// (`claims`); an admin may act on every order.
    User {
        id: UserId,
        admin: bool,
        claims: Option<UserId>,
    },
    /// A guest holding an order's access token (its hash).
    Guest { token_hash: String },
}

impl Buyer {
    pub(crate) fn may(&self, o: &Order) -> bool {
        match self {
            Buyer::User { id, admin, claims } => {
                *admin || o.user_id == *id || Some(o.user_id) == *claims
            }
            Buyer::Guest { token_hash } => o
                .access_hash
                .as_ref()
                .is_some_and(|h| bool::from(h.as_bytes().ct_eq(token_hash.as_bytes()))),
        }
    }

    pub(crate) fn guest(token: &str) -> Buyer {
        Buyer::Guest {
            token_hash: hash_token(token),
        }
    }
}

/// The guest identity whose orders `p` may treat as their own (their email, if verified).
pub(crate) fn claimed_identity(state: &AppState, p: &Principal) -> Result<Option<UserId>> {
    let rtx = state.store.read()?;
    Ok(crate::services::users::store::get(&rtx, p.user_id)?
        .filter(|u| u.email_verified)
        .map(|u| guest_user_id(&u.email)))
}

pub(crate) fn buyer(state: &AppState, p: &Principal) -> Result<Buyer> {
    Ok(Buyer::User {
        id: p.user_id,
        admin: p.is_admin(),
        claims: claimed_identity(state, p)?,
    })
}

/// Guest checkout, what the storefront's checkout page and `POST /api/v1/orders` without
/// a bearer token call: the cart of `cart_token` becomes an order owned by the guest
/// identity of `input.email` (see [`guest_user_id`]), in the same ONE transaction as a
/// signed-in checkout (stock reserved, prices, shipping, tax and commission frozen, cart
/// emptied, `Order.Created`); then the payment starts (card, hosted or cash on delivery;
/// a wallet is refused with 422). The answer carries `access_token`, shown only here:
/// with it the guest reads ([`get_guest`]), cancels ([`cancel_guest`]) or returns
/// (`request_return_guest`) the order. Errors as `checkout`, plus 422 for a bad email.
pub async fn checkout_guest(
    state: &AppState,
    cart_token: &str,
    client_ip: Option<String>,
    input: GuestCheckout,
) -> Result<CheckoutAnswer> {
    let email = Email::parse("email", &input.email).map_err(|e| Error::Validation(vec![e]))?;
    checkout::validate_address(&input.shipping_address)?;
    if input.payment_method == Method::Wallet {
        return Err(Error::invalid(
            "payment_method",
            "wallet_needs_account",
            "a guest pays by card, hosted page or cash on delivery; a wallet needs an account",
        ));
    }
    if !super::cart::valid_guest_token(cart_token) {
        return Err(Error::invalid(
            "x-cart-token",
            "invalid_cart_token",
            "not a cart token this store gave out",
        ));
    }
    let user = guest_user_id(&email);
    let token = new_access_token();
    let order = checkout::place(
        state,
        Placement {
            owner: CartOwner::Guest(cart_token.to_string()),
            user,
            actor: format!("guest:{user}"),
            guest_email: Some(email.as_str().to_string()),
            access_hash: Some(hash_token(&token)),
            items: None,
        },
        input.shipping_address.clone(),
        input.payment_method,
        OrderId::new(),
    )
    .await?;
    let payer = Principal {
        user_id: user,
        role: Role::Customer,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    };
    checkout::start_payment(
        state,
        &payer,
        client_ip,
        order.id,
        PaymentChoice {
            method: input.payment_method,
            payment_method_id: None,
            card: input.card,
        },
        Some(token),
    )
    .await
}

/// A guest's order by its access token (the storefront's order page for guests, and
/// `GET /api/v1/orders/{id}?access_token=`); a wrong token is 404, like a wrong id.
pub fn get_guest(state: &AppState, id: OrderId, access_token: &str) -> Result<OrderView> {
    let who = Buyer::guest(access_token);
    let rtx = state.store.read()?;
    let o = store::order(&rtx, id)?
        .filter(|o| who.may(o))
        .ok_or_else(|| Error::not_found("order"))?;
    Ok(view(&o))
}

/// Cancels a guest's order by its access token (same rules as `cancel`: until a parcel
/// ships; stock released, what was paid refunded).
pub async fn cancel_guest(
    state: &AppState,
    id: OrderId,
    access_token: &str,
    reason: String,
) -> Result<OrderView> {
    let who = Buyer::guest(access_token);
    let actor = guest_actor(state, id, &who)?;
    super::cancel_as(state, who, actor, id, reason).await
}

/// How a guest shows in histories: `guest:<identity>` (never the token).
pub(crate) fn guest_actor(state: &AppState, id: OrderId, who: &Buyer) -> Result<String> {
    let rtx = state.store.read()?;
    store::order(&rtx, id)?
        .filter(|o| who.may(o))
        .map(|o| format!("guest:{}", o.user_id))
        .ok_or_else(|| Error::not_found("order"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_identity_per_address_whatever_its_case() {
        let a = Email::parse("e", "Guest@Example.com").unwrap();
        let b = Email::parse("e", "guest@example.COM").unwrap();
        let c = Email::parse("e", "other@example.com").unwrap();
        assert_eq!(guest_user_id(&a), guest_user_id(&b));
        assert_ne!(guest_user_id(&a), guest_user_id(&c));
        assert_eq!(guest_user_id(&a).0.get_version_num(), 8);
    }

    #[test]
    fn access_tokens_are_long_and_only_their_hash_matches() {
        let t = new_access_token();
        assert!(t.len() >= 43);
        assert_ne!(t, new_access_token());
        let who = Buyer::guest(&t);
        let Buyer::Guest { token_hash } = &who else {
            panic!("a guest")
        };
        assert_eq!(token_hash, &hash_token(&t));
        assert_ne!(token_hash, &hash_token("something else"));
    }
}
