//! Test-only. Two things the test crates share:
//!
//! - The build script. A test crate that needs tools beyond the Rust toolchain names this
//!   crate as a dev-dependency with the features of the tools it needs; the build script runs
//!   first thing in `cargo test` (it depends on nothing) and fails the build with one line per
//!   missing tool, saying which command installs it, instead of a panic deep in a test after a
//!   ten-minute build. `./test` installs all of them. `CHIME_SKIP_TOOL_CHECK=1` skips the
//!   check (to run tests that need none of the tools).
//! - [`receiver`] (feature `receiver`): one loopback HTTP server that records what it is sent
//!   and answers as the test says, for every test that stands in for a webhook receiver or a
//!   provider. A test awaits the request it expects instead of sleeping.
//! - [`smtp`] (feature `smtp`): a real SMTP server (aiosmtpd, the tool the feature checks for)
//!   that saves what it accepts.
//! - [`synapse`] (feature `synapse`): a real Matrix homeserver (Synapse, the tool the feature
//!   checks for) with two users and a room.
//! - [`secantusdb`] (feature `secantusdb`): a MongoDB-wire-protocol server (SecantusDB, the tool
//!   the feature checks for) on a free port, for the MongoDB store's tests.

#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "secantusdb")]
pub mod secantusdb;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "synapse")]
pub mod synapse;
