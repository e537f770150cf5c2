//! Tests against real peers, started by `.ci/run` (see each module for the command). A
//! missing peer fails loudly; these tests never skip.

mod smtp;
