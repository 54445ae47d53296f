//! Integration tests: the real server on `127.0.0.1:0` with a fresh data directory per test
//! (in-process through `chime::start`, or the real binary where a test kills the process).

mod api;
mod channels;
mod flow;
mod helpers;
mod restart;
