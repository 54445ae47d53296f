//! Chime's domain, with no I/O: what a task is, how the design's POST body is parsed into one
//! that cannot be invalid, how its occurrences are computed on the wall clock of its time
//! zone, and the events the roles exchange.
//!
//! Everything here is deterministic: time is always passed in, never read from the system, so
//! recurrence and parsing are tested exactly.

pub mod error;
pub mod event;
pub mod html;
pub mod ics;
pub mod id;
pub mod profile;
pub mod recurrence;
pub mod sent;
pub mod task;

pub use error::{FieldError, FieldErrors};
pub use id::{NotificationId, TaskId, UserId};
pub use recurrence::{Occurrence, Schedule};
pub use task::{MissedPolicy, Notify, TaskSpec};
