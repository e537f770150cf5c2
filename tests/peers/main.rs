//! Tests against real peers, started by `.ci/run` (see each module for the command). A
//! missing peer fails loudly; these tests never skip.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod smtp;
