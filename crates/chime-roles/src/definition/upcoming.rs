//! What is coming up across all of a user's tasks: one query for the app's home screen (and
//! `GET /api/v1/occurrences`) instead of one per task.
//!
//! Each task's schedule is expanded from now, at most `limit` (or `per_task`) instants per task, a page of
//! tasks at a time; after each page only the soonest `limit` are kept, so memory stays
//! bounded by a page however many tasks the user has.

use std::sync::Arc;

use chime_core::task::TaskSpec;
use chime_core::{TaskId, UserId};
use jiff::Timestamp;

use super::{Definition, Result, TaskView};

/// Tasks read from the store at once.
const PAGE: usize = 1000;

/// One upcoming occurrence and the task it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcoming {
    pub at: Timestamp,
    pub task_id: TaskId,
    pub task_name: String,
    /// The task's time zone, as the task shows it (`Europe/Berlin`, `+02:00`).
    pub time_zone: String,
    pub repeats: bool,
    /// The task, shared by its occurrences in the list: what a note on one is read from.
    pub spec: Arc<TaskSpec>,
}

impl Definition {
    /// The next `limit` due instants from now across all of `user`'s tasks, at most
    /// `per_task` of any one task, soonest first; instants that tie keep the order of the task
    /// list (oldest task first).
    pub async fn upcoming(
        &self,
        user: &UserId,
        limit: usize,
        per_task: usize,
    ) -> Result<Vec<Upcoming>> {
        let now = self.now();
        let mut upcoming: Vec<Upcoming> = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_tasks(user, after, PAGE).await?;
            after = page.last().map(|r| r.id);
            let full = page.len() == PAGE;
            for record in page {
                let view = TaskView::load(record, now)?;
                let instants = view.spec.schedule.upcoming(now, limit.min(per_task));
                if instants.is_empty() {
                    continue;
                }
                let spec = Arc::new(view.spec);
                upcoming.extend(instants.into_iter().map(|at| Upcoming {
                    at,
                    task_id: view.record.id,
                    task_name: spec.name.as_str().to_owned(),
                    time_zone: spec.schedule.zone.name().to_owned(),
                    repeats: spec.schedule.repeats.is_some(),
                    spec: Arc::clone(&spec),
                }));
            }
            // Stable: ties stay in task order, across pages too.
            upcoming.sort_by_key(|u| u.at);
            upcoming.truncate(limit);
            if !full {
                return Ok(upcoming);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{ctx_at, definition, store};

    #[tokio::test]
    async fn upcoming_merges_the_soonest_occurrences_of_every_task_of_the_user_in_time_order() {
        let (store, _dir) = store();
        let definition = definition(&store, &ctx_at("2030-01-01T00:00:00Z"));
        let alice = UserId::parse("alice").expect("user");
        let daily = definition
            .create(
                &alice,
                json!({"name": "Daily", "startDate": "2030-01-01T09:00:00Z",
                        "repeats": {"period": "day", "frequency": 1}}),
            )
            .await
            .expect("create");
        let once = definition
            .create(
                &alice,
                json!({"name": "Once", "startDate": "2030-01-02T08:00:00Z",
                        "timeZone": "Europe/Berlin"}),
            )
            .await
            .expect("create");
        // At the same instant as the daily one: a tie keeps the task order.
        let tie = definition
            .create(
                &alice,
                json!({"name": "Tie", "startDate": "2030-01-03T09:00:00Z"}),
            )
            .await
            .expect("create");
        definition
            .create(
                &UserId::parse("bob").expect("user"),
                json!({"name": "Not Alice's", "startDate": "2030-01-01T08:00:00Z"}),
            )
            .await
            .expect("create");

        let upcoming = definition.upcoming(&alice, 5, 5).await.expect("upcoming");
        let seen: Vec<(String, &str)> = upcoming
            .iter()
            .map(|u| (u.at.to_string(), u.task_name.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("2030-01-01T09:00:00Z".to_owned(), "Daily"),
                ("2030-01-02T08:00:00Z".to_owned(), "Once"),
                ("2030-01-02T09:00:00Z".to_owned(), "Daily"),
                ("2030-01-03T09:00:00Z".to_owned(), "Daily"),
                ("2030-01-03T09:00:00Z".to_owned(), "Tie"),
            ]
        );
        assert_eq!(upcoming[0].task_id, daily.record.id);
        assert!(upcoming[0].repeats);
        assert_eq!(upcoming[1].task_id, once.record.id);
        assert_eq!(upcoming[1].time_zone, "Europe/Berlin");
        assert!(!upcoming[1].repeats);
        assert_eq!(upcoming[4].task_id, tie.record.id);

        // At most two of one task: the daily one gives way to the later ones.
        let capped = definition.upcoming(&alice, 5, 2).await.expect("upcoming");
        let names: Vec<&str> = capped.iter().map(|u| u.task_name.as_str()).collect();
        assert_eq!(names, ["Daily", "Once", "Daily", "Tie"]);
    }

    #[tokio::test]
    async fn a_user_without_tasks_has_nothing_upcoming() {
        let (store, _dir) = store();
        let definition = definition(&store, &ctx_at("2030-01-01T00:00:00Z"));
        let upcoming = definition
            .upcoming(&UserId::parse("carol").expect("user"), 10, 10)
            .await
            .expect("upcoming");
        assert!(upcoming.is_empty());
    }
}
