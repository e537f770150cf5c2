//! Card gateways and the hosted-gateway signature scheme. `CardGateway` is the edge to a
//! card processor; `TestGateway` is the built-in one for development and demos, which
//! accepts only well-known test numbers and never sees real money. The full card number
//! lives only in the request that tokenises it: nothing here stores, logs or returns it.

use super::model::{CardSummary, PaymentId};
use crate::error::{Error, FieldError, Result};
use crate::money::Money;
use futures_util::future::BoxFuture;
use ring::hmac;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Card details as the payer types them. Debug never shows the number or the code.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    pub number: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput(***)")
    }
}

/// What tokenising a card gives back: all we may keep of it.
#[derive(Clone)]
pub struct Tokenized {
    pub token: String,
    pub card: CardSummary,
    /// Stable for one card number, and useless to recover it.
    pub fingerprint: String,
}

impl std::fmt::Debug for Tokenized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenized({} {})", self.card.brand, self.card.last4)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Charge {
    Succeeded { charge_id: String },
    Declined { reason: String },
    RequiresConfirmation { charge_id: String, message: String },
}

/// A card processor. Calls that reach the network may fail with `Error::Unavailable`;
/// those count against the circuit breaker, declines do not.
pub trait CardGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// True for gateways that move no real money; every answer that uses one says so.
    fn test_mode(&self) -> bool;
    fn tokenize(&self, card: &CardInput, now: OffsetDateTime) -> Result<Tokenized>;
    fn charge<'a>(
        &'a self,
        token: &'a str,
        amount: Money,
        payment: PaymentId,
    ) -> BoxFuture<'a, Result<Charge>>;
    fn confirm<'a>(&'a self, charge_id: &'a str, code: &'a str) -> BoxFuture<'a, Result<Charge>>;
    fn refund<'a>(&'a self, charge_id: &'a str, amount: Money) -> BoxFuture<'a, Result<()>>;
}

/// The built-in test gateway's card numbers and what they do.
pub const TEST_CARDS: &[(&str, &str)] = &[
    ("4242424242424242", "success"),
    ("5555555555554444", "success"),
    ("4000000000000002", "declined"),
    ("4000000000009995", "insufficient_funds"),
    ("4000000000003220", "confirm"),
    ("4000000000000119", "gateway_error"),
];

/// The code the test gateway's confirmation step accepts.
pub const TEST_CONFIRMATION_CODE: &str = "123456";

pub struct TestGateway;

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn brand_of(digits: &str) -> &'static str {
    match digits.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') => "mastercard",
        Some(b'3') => "amex",
        _ => "card",
    }
}

/// Checks the shape of a card (digits, Luhn, expiry, code) as any gateway would first.
pub fn check_card(card: &CardInput, now: OffsetDateTime) -> Result<String> {
    let digits: String = card
        .number
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    let mut errors = Vec::new();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(FieldError::new(
            "card.number",
            "invalid_card_number",
            "must be 12 to 19 digits",
        ));
    } else if !luhn_ok(&digits) {
        errors.push(FieldError::new(
            "card.number",
            "invalid_card_number",
            "is not a valid card number",
        ));
    }
    if !(1..=12).contains(&card.exp_month) {
        errors.push(FieldError::new(
            "card.exp_month",
            "out_of_range",
            "must be 1 to 12",
        ));
    } else {
        let (y, m) = (i32::from(card.exp_year), i32::from(card.exp_month));
        let (ny, nm) = (now.year(), i32::from(u8::from(now.month())));
        if y < ny || (y == ny && m < nm) {
            errors.push(FieldError::new(
                "card.exp_year",
                "card_expired",
                "the card has expired",
            ));
        } else if y > ny + 25 {
            errors.push(FieldError::new(
                "card.exp_year",
                "out_of_range",
                "is too far in the future",
            ));
        }
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(FieldError::new(
            "card.cvc",
            "invalid_cvc",
            "must be 3 or 4 digits",
        ));
    }
    if errors.is_empty() {
        Ok(digits)
    } else {
        Err(Error::Validation(errors))
    }
}

impl CardGateway for TestGateway {
    fn name(&self) -> &'static str {
        "card"
    }

    fn test_mode(&self) -> bool {
        true
    }

    fn tokenize(&self, card: &CardInput, now: OffsetDateTime) -> Result<Tokenized> {
        let digits = check_card(card, now)?;
        let Some((_, scenario)) = TEST_CARDS.iter().find(|(n, _)| *n == digits) else {
            return Err(Error::invalid(
                "card.number",
                "test_card_required",
                "the test gateway accepts only its test card numbers (see the README)",
            ));
        };
        let rand: [u8; 12] = rand::random();
        let last4 = digits[digits.len() - 4..].to_string();
        let fingerprint = hex::encode(Sha256::digest(format!("souk-test-gateway:{digits}")));
        Ok(Tokenized {
            token: format!("tok_test_{scenario}_{}", hex::encode(rand)),
            card: CardSummary {
                brand: brand_of(&digits).into(),
                last4,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
            },
            fingerprint,
        })
    }

    fn charge<'a>(
        &'a self,
        token: &'a str,
        _amount: Money,
        _payment: PaymentId,
    ) -> BoxFuture<'a, Result<Charge>> {
        Box::pin(async move {
            let scenario = token
                .strip_prefix("tok_test_")
                .and_then(|rest| rest.rsplit_once('_'))
                .map(|(s, _)| s)
                .ok_or_else(|| {
                    Error::invalid(
                        "payment_method_id",
                        "invalid_token",
                        "not a test gateway token",
                    )
                })?;
            let id = format!("ch_test_{}", hex::encode(rand::random::<[u8; 12]>()));
            Ok(match scenario {
                "success" => Charge::Succeeded { charge_id: id },
                "declined" => Charge::Declined {
                    reason: "card_declined".into(),
                },
                "insufficient_funds" => Charge::Declined {
                    reason: "insufficient_funds".into(),
                },
                "confirm" => Charge::RequiresConfirmation {
                    charge_id: format!("{id}_3ds"),
                    message: format!("test gateway: confirm with code {TEST_CONFIRMATION_CODE}"),
                },
                _ => {
                    return Err(Error::Unavailable {
                        message: "the card gateway failed to answer".into(),
                        retry_after_secs: 5,
                    });
                }
            })
        })
    }

    fn confirm<'a>(&'a self, charge_id: &'a str, code: &'a str) -> BoxFuture<'a, Result<Charge>> {
        Box::pin(async move {
            if !charge_id.ends_with("_3ds") {
                return Ok(Charge::Declined {
                    reason: "nothing_to_confirm".into(),
                });
            }
            let ok: bool =
                subtle::ConstantTimeEq::ct_eq(code.as_bytes(), TEST_CONFIRMATION_CODE.as_bytes())
                    .into();
            Ok(if ok {
                Charge::Succeeded {
                    charge_id: charge_id.to_string(),
                }
            } else {
                Charge::Declined {
                    reason: "authentication_failed".into(),
                }
            })
        })
    }

    fn refund<'a>(&'a self, charge_id: &'a str, _amount: Money) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if charge_id.starts_with("ch_test_") {
                Ok(())
            } else {
                Err(Error::internal("unknown test charge"))
            }
        })
    }
}

/// HMAC-SHA256 over `timestamp.body`, hex: how hosted-gateway callbacks are signed.
pub fn sign_callback(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// Why a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    Missing,
    BadSignature,
    Stale,
}

/// Verifies a callback's signature (constant time) and that its timestamp is within
/// `tolerance_secs` of now, in either direction.
pub fn verify_callback(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: OffsetDateTime,
    tolerance_secs: u64,
) -> std::result::Result<(), CallbackRefusal> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| CallbackRefusal::Missing)?;
    let sig = hex::decode(signature.trim().trim_start_matches("v1="))
        .map_err(|_| CallbackRefusal::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = ts.to_string().into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    hmac::verify(&key, &msg, &sig).map_err(|_| CallbackRefusal::BadSignature)?;
    if (now.unix_timestamp() - ts).unsigned_abs() > tolerance_secs {
        return Err(CallbackRefusal::Stale);
    }
    Ok(())
}

/// The URL the buyer is sent to: the provider's page with the session, the amount and
/// where to come back, signed so the provider can trust the amount.
pub fn hosted_redirect_url(
    base: &str,
    secret: &str,
    payment: PaymentId,
    amount: Money,
    return_url: &str,
) -> String {
    let signed = format!("{payment}.{}.{}", amount.amount, amount.currency);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let sig = hex::encode(hmac::sign(&key, signed.as_bytes()).as_ref());
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("session", &payment.to_string())
        .append_pair("amount", &amount.amount.to_string())
        .append_pair("currency", amount.currency.as_str())
        .append_pair("return_url", return_url)
        .append_pair("signature", &sig)
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn card(number: &str) -> CardInput {
        CardInput {
            number: number.into(),
            exp_month: 12,
            exp_year: 2040,
            cvc: "123".into(),
        }
    }

    #[test]
    fn luhn_and_test_numbers() {
        for (n, _) in TEST_CARDS {
            assert!(luhn_ok(n), "{n}");
        }
        assert!(!luhn_ok("4242424242424241"));
        let now = OffsetDateTime::now_utc();
        let t = TestGateway
            .tokenize(&card("4242 4242 4242 4242"), now)
            .unwrap();
        assert_eq!(t.card.last4, "4242");
        assert_eq!(t.card.brand, "visa");
        assert!(!t.token.contains("4242424242424242"));
        assert!(!t.fingerprint.contains("4242424242424242"));
        // A real-looking card is refused: the test gateway never handles real cards.
        let e = TestGateway
            .tokenize(&card("4111111111111111"), now)
            .unwrap_err();
        assert!(matches!(e, Error::Validation(ref f) if f[0].code == "test_card_required"));
        let mut old = card("4242424242424242");
        old.exp_year = 2001;
        assert!(TestGateway.tokenize(&old, now).is_err());
        assert_eq!(format!("{:?}", card("4242424242424242")), "CardInput(***)");
    }

    #[test]
    fn callback_signatures() {
        let now = OffsetDateTime::now_utc();
        let ts = now.unix_timestamp();
        let secret = "s".repeat(32);
        let body = br#"{"event_id":"e1"}"#;
        let sig = sign_callback(&secret, ts, body);
        assert_eq!(
            verify_callback(&secret, &ts.to_string(), &sig, body, now, 300),
            Ok(())
        );
        assert_eq!(
            verify_callback(
                &secret,
                &ts.to_string(),
                &format!("v1={sig}"),
                body,
                now,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify_callback(&secret, &ts.to_string(), &sig, b"{}", now, 300),
            Err(CallbackRefusal::BadSignature)
        );
        assert_eq!(
            verify_callback(&"t".repeat(32), &ts.to_string(), &sig, body, now, 300),
            Err(CallbackRefusal::BadSignature)
        );
        let old = ts - 301;
        let old_sig = sign_callback(&secret, old, body);
        assert_eq!(
            verify_callback(&secret, &old.to_string(), &old_sig, body, now, 300),
            Err(CallbackRefusal::Stale)
        );
        assert_eq!(
            verify_callback(&secret, "soon", &sig, body, now, 300),
            Err(CallbackRefusal::Missing)
        );
    }
}
