//! Test-only, and empty: its build script is the point. A test crate that needs tools beyond
//! the Rust toolchain names this crate as a dev-dependency with the features of the tools it
//! needs; the build script runs first thing in `cargo test` (it depends on nothing) and fails
//! the build with one line per missing tool, saying which command installs it, instead of a
//! panic deep in a test after a ten-minute build. `./test` installs all of them.
//! `CHIME_SKIP_TOOL_CHECK=1` skips the check (to run tests that need none of the tools).
