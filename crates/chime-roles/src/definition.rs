//! The definition role: the task API's logic (assigns ids, versions every change, refuses bad
//! bodies before anything is stored) and the task history it builds from `execute_task` and
//! `notification_sent`.

mod import;
mod upcoming;

pub use import::{ImportOutcome, Imported};
pub use upcoming::Upcoming;

use std::sync::Arc;

use chime_bus::Bus;
use chime_core::event::{Event, TaskChanged, TaskDeleted, Topic};
use chime_core::recurrence::TaskZone;
use chime_core::task::{DestinationId, ParseOptions};
use chime_core::{FieldError, FieldErrors, TaskId, TaskSpec, UserId};
use chime_store::{
    DeliveryState, DeliveryStatus, FiredOccurrence, HistoryEntry, RecipientStore, TaskRecord,
    TaskStore,
};
use jiff::Timestamp;
use serde_json::Value;

use crate::{consumer, Context};

/// How often a concurrent edit is retried before giving up with a conflict.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("invalid task")]
    Invalid(#[from] FieldErrors),
    #[error("no such task")]
    NotFound,
    #[error("the task keeps changing concurrently; try again")]
    Conflict,
    /// The user already has `limit` tasks.
    #[error("the user already has {limit} tasks, the most allowed")]
    TaskLimit { limit: usize },
    /// The occurrence is not one the task has still to come (not its, or already due).
    #[error("{0}")]
    NotUpcoming(String),
    #[error(transparent)]
    Store(chime_store::Error),
}

impl From<chime_store::Error> for DefinitionError {
    fn from(e: chime_store::Error) -> Self {
        match e {
            chime_store::Error::Conflict => DefinitionError::Conflict,
            e => DefinitionError::Store(e),
        }
    }
}

pub type Result<T, E = DefinitionError> = std::result::Result<T, E>;

/// What [`Definition::change_occurrence`] does to one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccurrenceChange {
    /// It does not fire (RFC 5545 EXDATE).
    Skip,
    /// It fires at this instant instead (RFC 5545 RECURRENCE-ID), between its neighbours.
    Move(Timestamp),
    /// Undo a skip or a move.
    Restore,
    /// A new occurrence at the instant named (RFC 5545 RDATE), in addition to the rule's.
    Add,
}

/// A stored task and its parsed form.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub record: TaskRecord,
    pub spec: TaskSpec,
    /// The next due instant at or after the time of the request, if any.
    pub next_execution: Option<Timestamp>,
}

impl TaskView {
    /// A task whose `spec` was just parsed from the request: nothing is read back.
    fn new(record: TaskRecord, spec: TaskSpec, now: Timestamp) -> Self {
        let next_execution = spec.schedule.first_at_or_after(now).map(|o| o.at);
        Self {
            record,
            spec,
            next_execution,
        }
    }

    /// A task as stored.
    fn load(record: TaskRecord, now: Timestamp) -> Result<Self> {
        let spec = TaskSpec::from_stored(&record.body).map_err(|e| {
            DefinitionError::Store(chime_store::Error::Corrupt(format!(
                "stored task {}: {e}",
                record.id
            )))
        })?;
        Ok(Self::new(record, spec, now))
    }
}

#[derive(Clone)]
pub struct Definition {
    store: Arc<dyn TaskStore>,
    ctx: Context,
    /// How bodies are read (the default phone region).
    options: ParseOptions,
    /// Most tasks one user may have.
    task_limit: usize,
    /// Where a task's `notify.destinations` are looked up (each must be the owner's).
    destinations: Option<Arc<dyn RecipientStore>>,
}

impl Definition {
    pub fn new(store: Arc<dyn TaskStore>, ctx: Context, options: ParseOptions) -> Self {
        Self {
            store,
            ctx,
            options,
            task_limit: usize::MAX,
            destinations: None,
        }
    }

    /// Checks that each destination a task names is its owner's, in `store`.
    pub fn with_destinations(mut self, store: Arc<dyn RecipientStore>) -> Self {
        self.destinations = Some(store);
        self
    }

    /// Refuses a destination id that is not `user`'s, at its index in
    /// `notify.destinations`, unless `kept` names it (the task's current version does: a
    /// destination removed since then may stay, and its deliveries are not made).
    async fn check_destinations(
        &self,
        user: &UserId,
        spec: &TaskSpec,
        kept: &[DestinationId],
    ) -> Result<()> {
        let Some(store) = &self.destinations else {
            return Ok(());
        };
        if spec.notify.destinations.iter().all(|id| kept.contains(id)) {
            return Ok(());
        }
        let mine = store.destinations(user).await?;
        let errors: Vec<FieldError> = spec
            .notify
            .destinations
            .iter()
            .enumerate()
            .filter(|(_, id)| !kept.contains(id) && !mine.iter().any(|d| d.id == id.as_str()))
            .map(|(i, id)| {
                FieldError::new(
                    format!("/notify/destinations/{i}"),
                    Some(Value::String(id.to_string())),
                    "no destination of yours has this id (GET /api/v1/destinations lists them)",
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DefinitionError::Invalid(FieldErrors(errors)))
        }
    }

    /// Refuses a create when the user already has `limit` tasks. The count and the insert are
    /// not one transaction, so racing creates of one user can overshoot by the creates in
    /// flight at once, which the per-user write rate bounds.
    pub fn with_task_limit(mut self, limit: usize) -> Self {
        self.task_limit = limit;
        self
    }

    /// Creates `user`'s task from the API's body (a floating one is refused: it needs
    /// [`Definition::create_with_home`]).
    pub async fn create(&self, user: &UserId, body: Value) -> Result<TaskView> {
        self.create_with_home(user, body, None).await
    }

    /// Creates `user`'s task from the API's body; `home` is the zone of the user's settings,
    /// which a floating task takes.
    #[tracing::instrument(skip_all)]
    pub async fn create_with_home(
        &self,
        user: &UserId,
        body: Value,
        home: Option<&TaskZone>,
    ) -> Result<TaskView> {
        let mut spec = TaskSpec::parse_with(body, &self.options)?;
        settle(&mut spec, home)?;
        let now = self.now();
        spec.require_future(now)?;
        spec.check_moves()?;
        self.check_destinations(user, &spec, &[]).await?;
        let record = TaskRecord {
            id: TaskId::new(),
            user_id: user.clone(),
            version: 1,
            body: spec.to_stored(),
            created_at: now,
            modified_at: now,
        };
        let event = Event::TaskCreated(changed(&record, now));
        if self.task_limit == usize::MAX {
            self.store.create_task(&record, (&event).into()).await?;
        } else {
            // Checked in the create's own transaction: exact when creates race, and O(1).
            let limit = u64::try_from(self.task_limit).unwrap_or(u64::MAX);
            if !self
                .store
                .create_task_within(&record, (&event).into(), limit)
                .await?
            {
                return Err(DefinitionError::TaskLimit {
                    limit: self.task_limit,
                });
            }
        }
        self.ctx.metrics.tasks_created.inc();
        tracing::info!(task_id = %record.id, "task created");
        Ok(TaskView::new(record, spec, now))
    }

    pub async fn get(&self, user: &UserId, id: TaskId) -> Result<TaskView> {
        let record = self.record(user, id).await?;
        TaskView::load(record, self.now())
    }

    /// Any user's task, for an admin's support read (the caller audits it).
    pub async fn get_any(&self, id: TaskId) -> Result<TaskView> {
        let record = self
            .store
            .task_by_id(id)
            .await?
            .ok_or(DefinitionError::NotFound)?;
        TaskView::load(record, self.now())
    }

    /// `user`'s tasks after `after`, at most `limit`; the cursor of the next page is the last
    /// id returned when the page is full.
    pub async fn list(
        &self,
        user: &UserId,
        after: Option<TaskId>,
        limit: usize,
    ) -> Result<Vec<TaskView>> {
        let now = self.now();
        self.store
            .list_tasks(user, after, limit)
            .await?
            .into_iter()
            .map(|r| TaskView::load(r, now))
            .collect()
    }

    pub async fn replace(&self, user: &UserId, id: TaskId, body: Value) -> Result<TaskView> {
        self.replace_with_home(user, id, body, None).await
    }

    /// Replaces `user`'s task; `home` as for [`Definition::create_with_home`].
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn replace_with_home(
        &self,
        user: &UserId,
        id: TaskId,
        body: Value,
        home: Option<&TaskZone>,
    ) -> Result<TaskView> {
        let mut spec = TaskSpec::parse_with(body, &self.options)?;
        settle(&mut spec, home)?;
        for _ in 0..CONFLICT_RETRIES {
            let current = self.record(user, id).await?;
            let now = self.now();
            spec.require_future(now)?;
            spec.check_moves()?;
            let kept = TaskSpec::from_stored(&current.body)
                .map(|c| c.notify.destinations)
                .unwrap_or_default();
            self.check_destinations(user, &spec, &kept).await?;
            if let Some(view) = self.save(current, spec.clone(), now).await? {
                return Ok(view);
            }
        }
        Err(DefinitionError::Conflict)
    }

    /// Moves `user`'s floating tasks onto `home`, the zone their settings now name, each at
    /// the same local times ([`chime_core::Schedule::in_zone`]: every pending occurrence fires
    /// once), as a new version: the claim fence keeps the old schedule rows from firing once
    /// this returns. A task already on `home` is left alone, so running it again (after a
    /// crash part way, or a repeated settings save) finishes the job without moving anything
    /// twice. Returns how many tasks moved.
    pub async fn follow_home(&self, user: &UserId, home: &TaskZone) -> Result<usize> {
        const PAGE: usize = 500;
        let mut moved = 0;
        let mut after = None;
        loop {
            let page = self.store.list_tasks(user, after, PAGE).await?;
            after = page.last().map(|r| r.id);
            for record in &page {
                let floating = |r: &TaskRecord| {
                    TaskSpec::from_stored(&r.body)
                        .is_ok_and(|spec| spec.floating && spec.schedule.zone != *home)
                };
                if !floating(record) {
                    continue;
                }
                for attempt in 0..=CONFLICT_RETRIES {
                    if attempt == CONFLICT_RETRIES {
                        return Err(DefinitionError::Conflict);
                    }
                    let current = self.record(user, record.id).await?;
                    if !floating(&current) {
                        break;
                    }
                    let now = self.now();
                    let mut spec = TaskView::load(current.clone(), now)?.spec;
                    spec.schedule = spec.schedule.in_zone(home, now);
                    if self.save(current, spec, now).await?.is_some() {
                        moved += 1;
                        break;
                    }
                }
            }
            if page.len() < PAGE {
                return Ok(moved);
            }
        }
    }

    /// Stores `spec` as the next version of `current`, with its `task_updated` event: `None`
    /// when another change got there first (the caller reads again and retries).
    async fn save(
        &self,
        current: TaskRecord,
        spec: TaskSpec,
        now: Timestamp,
    ) -> Result<Option<TaskView>> {
        let record = TaskRecord {
            version: current.version + 1,
            body: spec.to_stored(),
            modified_at: now,
            ..current
        };
        let event = Event::TaskUpdated(changed(&record, now));
        match self.store.update_task(&record, (&event).into()).await {
            Ok(true) => {
                self.ctx.metrics.tasks_updated.inc();
                tracing::info!(version = record.version, "task updated");
                Ok(Some(TaskView::new(record, spec, now)))
            }
            Ok(false) => Err(DefinitionError::NotFound),
            Err(chime_store::Error::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Skips, moves or restores one occurrence of `user`'s task, named by the instant it is
    /// due at now (moved or not; for `Restore`, also a skipped one's), as a new version of the
    /// task: its schedule is recomputed from it like any change, and the claim fence keeps the
    /// old schedule row from firing once this returns. Only an occurrence still to come can
    /// change: one due at or before now is [`DefinitionError::NotUpcoming`].
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn change_occurrence(
        &self,
        user: &UserId,
        id: TaskId,
        due: Timestamp,
        change: OccurrenceChange,
    ) -> Result<TaskView> {
        use chime_core::recurrence::ExceptionError;
        use chime_core::task::{MAX_ADDED, MAX_MOVED, MAX_SKIPPED};
        for _ in 0..CONFLICT_RETRIES {
            let current = self.record(user, id).await?;
            let now = self.now();
            let mut spec = TaskView::load(current.clone(), now)?.spec;
            let schedule = &mut spec.schedule;
            if due <= now && change == OccurrenceChange::Add {
                return Err(DefinitionError::Invalid(FieldErrors::one(
                    "/at",
                    Some(Value::String(due.to_string())),
                    format!("{due} is not after now ({now})"),
                )));
            }
            if due <= now {
                return Err(DefinitionError::NotUpcoming(format!(
                    "the occurrence due at {due} is not still to come (it is now {now})"
                )));
            }
            let exceptions = &schedule.exceptions;
            let original = exceptions
                .moved
                .iter()
                .find(|(_, to)| **to == due)
                .map_or(due, |(from, _)| *from);
            let occurrence = schedule.first_at_or_after(due).filter(|o| o.at == due);
            let upcoming = occurrence.is_some();
            // One added by `Add` (numbered 0), not the rule's: skipping or moving it changes
            // the added list.
            let added = occurrence.is_some_and(|o| o.seq == 0);
            let mut after = schedule.exceptions.clone();
            let invalid = |pointer: &str, at: Timestamp, detail: String| {
                DefinitionError::Invalid(FieldErrors::one(
                    pointer,
                    Some(Value::String(at.to_string())),
                    detail,
                ))
            };
            match change {
                // Added already (a retry of this call): nothing to change, so no new version.
                OccurrenceChange::Add if added => {
                    return TaskView::load(current, now);
                }
                OccurrenceChange::Add => {
                    let taken = if upcoming {
                        Some("is already an occurrence of this task")
                    } else if after.skipped.contains(&due) {
                        Some("is a skipped occurrence of this task: restore it instead")
                    } else if after.moved.contains_key(&due) {
                        Some("is where a moved occurrence was due: move it back instead")
                    } else {
                        None
                    };
                    if let Some(taken) = taken {
                        return Err(invalid("/at", due, format!("{due} {taken}")));
                    }
                    after.added.insert(due);
                }
                OccurrenceChange::Restore => {
                    // Back where the rule puts it: refused if that has passed, as it would then
                    // never fire (moved from 09:00 to 12:00, moved back at 10:00).
                    if original <= now {
                        return Err(DefinitionError::NotUpcoming(format!(
                            "moving it back would put it at {original}, which has passed: it \
                             would never fire"
                        )));
                    }
                    let restored =
                        after.skipped.remove(&due) | after.moved.remove(&original).is_some();
                    if !restored {
                        return Err(DefinitionError::NotUpcoming(format!(
                            "nothing to restore at {due}: no skipped or moved occurrence is there"
                        )));
                    }
                }
                _ if !upcoming => {
                    return Err(DefinitionError::NotUpcoming(format!(
                        "{due} is not an occurrence of this task still to come"
                    )))
                }
                OccurrenceChange::Skip if added => {
                    after.added.remove(&due);
                }
                OccurrenceChange::Skip => {
                    after.moved.remove(&original);
                    after.skipped.insert(original);
                }
                OccurrenceChange::Move(to) if to <= now => {
                    return Err(invalid("/to", to, format!("{to} is not after now ({now})")));
                }
                OccurrenceChange::Move(to) if added => {
                    if schedule.first_at_or_after(to).is_some_and(|o| o.at == to) {
                        return Err(invalid(
                            "/to",
                            to,
                            format!("{to} is already an occurrence of this task"),
                        ));
                    }
                    after.added.remove(&due);
                    after.added.insert(to);
                }
                OccurrenceChange::Move(to) => {
                    let invalid = |detail: String| invalid("/to", to, detail);
                    let mut without = schedule.clone();
                    without.exceptions.moved.remove(&original);
                    without.check_move(original, to).map_err(|e| match e {
                        ExceptionError::NotAnOccurrence(_) => invalid(e.to_string()),
                        ExceptionError::PastANeighbour { .. } => invalid(e.to_string()),
                    })?;
                    if to == original {
                        after.moved.remove(&original);
                    } else {
                        after.moved.insert(original, to);
                    }
                }
            }
            if after.skipped.len() > MAX_SKIPPED
                || after.moved.len() > MAX_MOVED
                || after.added.len() > MAX_ADDED
            {
                return Err(DefinitionError::NotUpcoming(format!(
                    "a task skips at most {MAX_SKIPPED}, moves at most {MAX_MOVED} and adds at \
                     most {MAX_ADDED} occurrences"
                )));
            }
            schedule.exceptions = after;
            if let Some(view) = self.save(current, spec, now).await? {
                tracing::info!(?change, "occurrence changed");
                return Ok(view);
            }
        }
        Err(DefinitionError::Conflict)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn delete(&self, user: &UserId, id: TaskId) -> Result<()> {
        for _ in 0..CONFLICT_RETRIES {
            let current = self.record(user, id).await?;
            let event = Event::TaskDeleted(TaskDeleted {
                task_id: id,
                user_id: user.clone(),
                // The schedule keeps this version as a tombstone, above every update's.
                version: current.version + 1,
                at: self.now(),
            });
            match self
                .store
                .delete_task(user, id, current.version, (&event).into())
                .await
            {
                Ok(true) => {
                    self.ctx.metrics.tasks_deleted.inc();
                    tracing::info!("task deleted");
                    return Ok(());
                }
                Ok(false) => return Err(DefinitionError::NotFound),
                Err(chime_store::Error::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DefinitionError::Conflict)
    }

    /// The task's next `count` due instants from now.
    pub async fn occurrences(
        &self,
        user: &UserId,
        id: TaskId,
        count: usize,
    ) -> Result<Vec<Timestamp>> {
        let view = self.get(user, id).await?;
        Ok(view.spec.schedule.upcoming(self.now(), count))
    }

    /// Reads one line of English (`Call mom tomorrow at 9`) on `zone`'s wall clock into a
    /// task body, checked as a create would check it: the body, what was understood, and its
    /// next `count` occurrences. Nothing is stored. A line it cannot read exactly is refused
    /// at `/text`.
    pub fn quick_add(
        &self,
        text: &str,
        zone: &chime_core::recurrence::TaskZone,
        count: usize,
    ) -> Result<(chime_core::task::quick::QuickAdd, Vec<Timestamp>)> {
        let now = self.now();
        let refused = |detail: String| {
            DefinitionError::Invalid(FieldErrors::one(
                "/text",
                Some(Value::String(text.to_owned())),
                detail,
            ))
        };
        let quick = chime_core::task::quick::quick_add(text, now, zone)
            .map_err(|e| refused(e.to_string()))?;
        let spec = TaskSpec::parse_with(quick.body.clone(), &self.options).map_err(|e| {
            refused(
                e.0.iter()
                    .map(|f| f.detail.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        spec.require_future(now)
            .map_err(|e| refused(e.0.first().map_or_else(String::new, |f| f.detail.clone())))?;
        let upcoming = spec.schedule.upcoming(now, count);
        Ok((quick, upcoming))
    }

    /// The next `count` due instants of a body that is not saved.
    pub fn preview(&self, body: Value, count: usize) -> Result<Vec<Timestamp>> {
        let spec = TaskSpec::parse_with(body, &self.options)?;
        Ok(spec.schedule.upcoming(self.now(), count))
    }

    pub async fn history(
        &self,
        user: &UserId,
        id: TaskId,
        before: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.record(user, id).await?;
        Ok(self.store.history(user, id, before, limit).await?)
    }

    /// Now, to the microsecond: the precision every store keeps, so what a create returns
    /// is exactly what a later read returns.
    pub fn now(&self) -> Timestamp {
        let now = self.ctx.clock.now();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }

    async fn record(&self, user: &UserId, id: TaskId) -> Result<TaskRecord> {
        self.store
            .get_task(user, id)
            .await?
            .ok_or(DefinitionError::NotFound)
    }
}

fn changed(record: &TaskRecord, now: Timestamp) -> TaskChanged {
    TaskChanged {
        task_id: record.id,
        user_id: record.user_id.clone(),
        version: record.version,
        task: record.body.clone(),
        at: now,
    }
}

/// The history worker: records each fired occurrence and each delivery's final state.
/// A floating task takes its owner's zone, `home`; without one it cannot float.
fn settle(spec: &mut TaskSpec, home: Option<&TaskZone>) -> Result<()> {
    if !spec.floating {
        return Ok(());
    }
    let Some(home) = home else {
        return Err(DefinitionError::Invalid(FieldErrors::one(
            "/floating",
            Some(Value::Bool(true)),
            "a floating task follows the time zone of your settings: choose one first \
             (`timeZone` of PUT /api/v1/me)",
        )));
    };
    spec.schedule.zone = home.clone();
    Ok(())
}

pub async fn run_history(
    store: Arc<dyn TaskStore>,
    bus: Arc<dyn Bus>,
    ctx: Context,
) -> crate::Result<()> {
    consumer::run(
        bus,
        "definition",
        &[Topic::ExecuteTask, Topic::NotificationSent],
        &ctx,
        |events| {
            let store = store.clone();
            async move {
                let mut fired = Vec::new();
                let mut states = Vec::new();
                for event in events {
                    match event {
                        Event::ExecuteTask(e) => fired.push(FiredOccurrence {
                            occurrence: e.occurrence,
                            user_id: e.user_id,
                            seq: e.seq,
                            fired_at: e.fired_at,
                            late: e.late,
                            skipped: e.skipped,
                            coalesced: e.coalesced,
                        }),
                        Event::NotificationSent(e) => states.push(DeliveryState {
                            occurrence: e.occurrence,
                            status: DeliveryStatus {
                                channel: e.channel,
                                target: e.target,
                                outcome: e.outcome,
                                attempts: e.attempts,
                                at: e.at,
                                detail: e.detail,
                                provider_id: e.provider_id,
                            },
                        }),
                        _ => {}
                    }
                }
                if !fired.is_empty() {
                    store.record_fired(&fired).await?;
                }
                if !states.is_empty() {
                    store.record_delivery_states(&states).await?;
                }
                Ok(())
            }
        },
    )
    .await
}
