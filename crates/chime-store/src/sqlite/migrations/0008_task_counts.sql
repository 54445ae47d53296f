-- Each user's number of tasks, kept by triggers in every transaction that adds or removes a
-- task (create, delete, retention, erasure), so that the per-user cap is one indexed read
-- instead of a count of the user's tasks, and exact: a create reads it in its own write
-- transaction.
CREATE TABLE task_counts (
    user_id TEXT    PRIMARY KEY,
    tasks   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO task_counts (user_id, tasks)
SELECT user_id, COUNT(*) FROM tasks GROUP BY user_id;

CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_counts (user_id, tasks) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET tasks = tasks + 1;
END;

CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks
BEGIN
    UPDATE task_counts SET tasks = tasks - 1 WHERE user_id = OLD.user_id;
END;
