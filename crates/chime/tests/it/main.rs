//! Integration tests: the real server on `127.0.0.1:0` with a fresh data directory per test
//! (in-process through `chime::start`, or the real binary where a test kills the process).

mod act;
mod api;
mod backup;
mod calendar;
mod channels;
mod clock;
mod cluster;
mod contract;
mod crashloop;
mod destinations;
mod doctor;
mod failover;
mod fence;
mod flow;
mod full_disk;
mod helpers;
mod hostile;
mod isolation;
mod load;
mod logs;
#[cfg(feature = "postgres")]
mod migrate;
mod occurrences;
mod oidc;
mod ops;
mod partition;
mod pii;
mod profile;
mod restart;
mod retention;
mod rules;
mod schemathesis;
mod security;
mod traces;
mod web;
