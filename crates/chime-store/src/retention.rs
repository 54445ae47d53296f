//! Retention: what a policy lets go of the past (the design: "a policy can be created to delete
//! past tasks over a certain threshold"), as one small port every adapter implements.
//!
//! Each [`PastKind`] is one table and one rule. A row goes only when it is older than the
//! cutoff *and* settled at `now`: nothing still scheduled, pending, open, snoozed, nagging,
//! escalating or unread is ever touched, whatever its age. The rules are written once here,
//! in SQL both adapters run (`$n` parameters; SQLite reads them as `?n`).
//!
//! Deletion walks a table in primary-key order, one window of at most `max` rows per call and
//! transaction, and deletes the window's rows the rule lets go: each call costs `max` rows
//! however few match, the writer is held only briefly, and a walk stopped half way (a restart)
//! is resumed by starting again, since a second pass finds only what the first left.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::Result;

/// What retention deletes, in the order a run should take them (history before its delivery
/// states, so that those of a deleted entry go in the same run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PastKind {
    /// A task with nothing left to fire (a fired one-time task, an ended repeat), changed and
    /// last fired before the cutoff, with no open, snoozed or escalating occurrence and no
    /// pending delivery. Its schedule row stays the tombstone it already is.
    FinishedTasks,
    /// A fired occurrence's history entry, fired before the cutoff, once its occurrence is
    /// settled and none of its deliveries is pending.
    History,
    /// A history entry's delivery state, once the entry is gone.
    HistoryDeliveries,
    /// An occurrence's state, fired before the cutoff and settled: acknowledged or expired,
    /// with no snooze, nag or escalation still to come.
    Occurrences,
    /// A final delivery (sent, skipped, dead-lettered) older than the cutoff, of a settled
    /// occurrence. Pending ones are never touched.
    Deliveries,
    /// An inbox item read and created before the cutoff. Unread ones stay.
    ReadInbox,
    /// Which occurrence an SMS number's replies are about, sent before the cutoff.
    ReplyTargets,
}

impl PastKind {
    pub const ALL: [PastKind; 7] = [
        PastKind::FinishedTasks,
        PastKind::History,
        PastKind::HistoryDeliveries,
        PastKind::Occurrences,
        PastKind::Deliveries,
        PastKind::ReadInbox,
        PastKind::ReplyTargets,
    ];

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            PastKind::FinishedTasks => "finished_tasks",
            PastKind::History => "history",
            PastKind::HistoryDeliveries => "history_deliveries",
            PastKind::Occurrences => "occurrences",
            PastKind::Deliveries => "deliveries",
            PastKind::ReadInbox => "read_inbox",
            PastKind::ReplyTargets => "reply_targets",
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn table(self) -> PastTable {
        // `x` is the row the rule looks at.
        const SETTLED: &str = "(o.acked_at IS NOT NULL OR o.expires_at <= $2) \
                               AND o.wake_at IS NULL AND o.escalate_at IS NULL";
        const OCCURRENCE: &[(&str, KeyType)] =
            &[("task_id", KeyType::Text), ("due_at", KeyType::Int)];
        const DELIVERY: &[(&str, KeyType)] = &[
            ("task_id", KeyType::Text),
            ("due_at", KeyType::Int),
            ("channel", KeyType::Text),
            ("target", KeyType::Text),
        ];
        let unsettled = format!(
            "EXISTS (SELECT 1 FROM occurrences o WHERE o.task_id = x.task_id \
             AND o.due_at = x.due_at AND NOT ({SETTLED}))"
        );
        let pending = "EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = x.task_id \
                       AND d.due_at = x.due_at AND d.outcome = 'pending')";
        match self {
            PastKind::FinishedTasks => PastTable {
                table: "tasks",
                key: &[("id", KeyType::Text)],
                rule: format!(
                    "x.modified_at < $1 \
                     AND EXISTS (SELECT 1 FROM schedule s WHERE s.task_id = x.id \
                                 AND s.version = x.version AND s.due_at IS NULL) \
                     AND NOT EXISTS (SELECT 1 FROM occurrences o WHERE o.task_id = x.id \
                                     AND (o.fired_at >= $1 OR NOT ({SETTLED}))) \
                     AND NOT EXISTS (SELECT 1 FROM history h WHERE h.task_id = x.id \
                                     AND h.fired_at >= $1) \
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = x.id \
                                     AND d.outcome = 'pending')"
                ),
            },
            PastKind::History => PastTable {
                table: "history",
                key: OCCURRENCE,
                rule: format!("x.fired_at < $1 AND NOT {unsettled} AND NOT {pending}"),
            },
            PastKind::HistoryDeliveries => PastTable {
                table: "history_deliveries",
                key: DELIVERY,
                rule: "x.at < $1 AND NOT EXISTS (SELECT 1 FROM history h \
                       WHERE h.task_id = x.task_id AND h.due_at = x.due_at)"
                    .to_owned(),
            },
            PastKind::Occurrences => PastTable {
                table: "occurrences",
                key: OCCURRENCE,
                rule: format!(
                    "x.fired_at < $1 AND (x.acked_at IS NOT NULL OR x.expires_at <= $2) \
                     AND x.wake_at IS NULL AND x.escalate_at IS NULL AND NOT {pending}"
                ),
            },
            PastKind::Deliveries => PastTable {
                table: "deliveries",
                key: DELIVERY,
                rule: format!("x.at < $1 AND x.outcome <> 'pending' AND NOT {unsettled}"),
            },
            PastKind::ReadInbox => PastTable {
                table: "inbox",
                key: &[("id", KeyType::Text)],
                rule: "x.read = TRUE AND x.created_at < $1".to_owned(),
            },
            PastKind::ReplyTargets => PastTable {
                table: "sms_reply_targets",
                key: &[("number_hash", KeyType::Text)],
                rule: "x.sent_at < $1".to_owned(),
            },
        }
    }
}

/// Where a walk through a table stopped: the last primary key of the last window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastCursor(pub(crate) Vec<KeyValue>);

/// One call's work: how many rows it deleted, and where the walk goes on (`None` once the
/// table's end is reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    pub deleted: u64,
    pub next: Option<PastCursor>,
}

/// The retention port: delete what [`PastKind`]'s rule lets go, a window at a time.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Looks at the next at most `max` rows of `kind`'s table after `after` (from the start
    /// when `None`), in primary-key order, and deletes those older than `cutoff` that are
    /// settled at `now`, in one transaction.
    async fn purge_past(
        &self,
        kind: PastKind,
        cutoff: Timestamp,
        now: Timestamp,
        after: Option<&PastCursor>,
        max: usize,
    ) -> Result<Purged>;

    /// How many rows of `kind` a walk through the whole table would delete now.
    async fn count_past(&self, kind: PastKind, cutoff: Timestamp, now: Timestamp) -> Result<u64>;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Text,
    Int,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyValue {
    Text(String),
    Int(i64),
}

/// One kind's table, key and rule, and the three statements both adapters run.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct PastTable {
    pub table: &'static str,
    pub key: &'static [(&'static str, KeyType)],
    /// On the row `x`; `$1` is the cutoff and `$2` now (microseconds).
    pub rule: String,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl PastTable {
    fn columns(&self, prefix: &str) -> String {
        let names: Vec<String> = self
            .key
            .iter()
            .map(|(name, _)| format!("{prefix}{name}"))
            .collect();
        format!("({})", names.join(", "))
    }

    fn params(&self, first: usize) -> String {
        let params: Vec<String> = (0..self.key.len())
            .map(|i| format!("${}", first + i))
            .collect();
        format!("({})", params.join(", "))
    }

    /// The next window's keys: the cursor in `$1..` (when `after`), then the limit.
    pub fn window(&self, after: bool) -> String {
        let (columns, n) = (self.columns(""), self.key.len());
        let (filter, limit) = if after {
            (format!(" WHERE {columns} > {}", self.params(1)), n + 1)
        } else {
            (String::new(), 1)
        };
        format!(
            "SELECT {} FROM {}{filter} ORDER BY {} LIMIT ${limit}",
            &columns[1..columns.len() - 1],
            self.table,
            &columns[1..columns.len() - 1],
        )
    }

    /// Deletes what the rule lets go between the window's first key (`$3..`) and last key.
    pub fn purge(&self) -> String {
        let columns = self.columns("x.");
        let n = self.key.len();
        format!(
            "DELETE FROM {} AS x WHERE {columns} >= {} AND {columns} <= {} AND {}",
            self.table,
            self.params(3),
            self.params(3 + n),
            self.rule
        )
    }

    /// How many rows the rule lets go in the whole table.
    pub fn count(&self) -> String {
        format!(
            "SELECT COUNT(*) FROM {} AS x WHERE {}",
            self.table, self.rule
        )
    }
}

#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::*;

    #[test]
    fn the_statements_number_their_parameters_in_order() {
        let table = PastKind::History.table();
        assert_eq!(
            table.window(false),
            "SELECT task_id, due_at FROM history ORDER BY task_id, due_at LIMIT $1"
        );
        assert_eq!(
            table.window(true),
            "SELECT task_id, due_at FROM history WHERE (task_id, due_at) > ($1, $2) \
             ORDER BY task_id, due_at LIMIT $3"
        );
        assert!(table.purge().starts_with(
            "DELETE FROM history AS x WHERE (x.task_id, x.due_at) >= ($3, $4) \
             AND (x.task_id, x.due_at) <= ($5, $6) AND x.fired_at < $1"
        ));
    }
}
