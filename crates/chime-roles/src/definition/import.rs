//! Importing a calendar file: each of its reminders checked as a create would check it, then,
//! unless it is a dry run, created.

use chime_core::ics::import::{self, Skipped};
use chime_core::ics::plan::{plan, Planned};
use chime_core::recurrence::TaskZone;
use chime_core::{FieldErrors, TaskSpec, UserId};
use jiff::Timestamp;
use serde_json::Value;

use super::{Definition, DefinitionError, Result, TaskView};

/// One task of an import: what it would be (a dry run) or what it is now.
#[derive(Debug, Clone)]
pub struct Imported {
    pub planned: Planned,
    pub spec: TaskSpec,
    /// Its next few occurrences.
    pub upcoming: Vec<Timestamp>,
    /// The created task; `None` in a dry run.
    pub created: Option<TaskView>,
}

/// What an import did or would do.
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    pub tasks: Vec<Imported>,
    pub skipped: Vec<Skipped>,
}

/// How many occurrences each imported task shows.
const SHOWN: usize = 3;

impl Definition {
    /// Reads `text` (an `.ics` file; floating times on `zone`) into tasks for `user`: every
    /// reminder of every event and to-do ([`chime_core::ics::plan`]) checked as a create checks
    /// a body, and one with nothing still to come skipped with why. Unless `dry_run`, each is
    /// created in file order; once the user's task limit is reached the rest are skipped with
    /// that reason. A file that is no calendar is refused at `/calendar` and nothing is created.
    pub async fn import(
        &self,
        user: &UserId,
        text: &str,
        zone: &TaskZone,
        dry_run: bool,
    ) -> Result<ImportOutcome> {
        let now = self.now();
        let read = import::parse(text, zone).map_err(|e| {
            DefinitionError::Invalid(FieldErrors::one("/calendar", None, e.to_string()))
        })?;
        let plan = plan(read, now);
        let mut out = ImportOutcome {
            tasks: Vec::new(),
            skipped: plan.skipped,
        };
        for planned in plan.tasks {
            let skip = |reason: String| Skipped {
                uid: planned.uid.clone(),
                summary: planned.body["name"].as_str().map(str::to_owned),
                reason: format!("the reminder {}: {reason}", planned.reminder),
            };
            let spec = match self.checked(planned.body.clone(), now) {
                Ok(spec) => spec,
                Err(reason) => {
                    out.skipped.push(skip(reason));
                    continue;
                }
            };
            let created = if dry_run {
                None
            } else {
                match self.create(user, spec.to_json()).await {
                    Ok(view) => Some(view),
                    Err(DefinitionError::TaskLimit { limit }) => {
                        out.skipped
                            .push(skip(format!("you have {limit} tasks, the most allowed")));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            out.tasks.push(Imported {
                upcoming: spec.schedule.upcoming(now, SHOWN),
                planned,
                spec,
                created,
            });
        }
        Ok(out)
    }

    /// `body` as a task if a create would take it at `now`, else why not, in words.
    fn checked(&self, body: Value, now: Timestamp) -> std::result::Result<TaskSpec, String> {
        let words = |e: FieldErrors| {
            e.0.iter()
                .map(|f| format!("{}: {}", f.pointer, f.detail))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let spec = TaskSpec::parse_with(body, &self.options).map_err(words)?;
        spec.require_future(now)
            .map_err(|_| "nothing left to remind: every occurrence is in the past".to_owned())?;
        spec.check_moves().map_err(words)?;
        Ok(spec)
    }
}
