-- Each user's number of tasks, kept by a trigger in every transaction that adds or removes a
-- task (create, delete, retention, erasure), so that the per-user cap is one indexed read
-- instead of a count of the user's tasks, and exact: a create locks its owner's row first, so
-- concurrent creates of one user take their turns.
CREATE TABLE task_counts (
    user_id TEXT   PRIMARY KEY,
    tasks   BIGINT NOT NULL
);

INSERT INTO task_counts (user_id, tasks)
SELECT user_id, COUNT(*) FROM tasks GROUP BY user_id;

CREATE FUNCTION chime_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_counts (user_id, tasks) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET tasks = task_counts.tasks + 1;
        RETURN NEW;
    END IF;
    UPDATE task_counts SET tasks = tasks - 1 WHERE user_id = OLD.user_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE ON tasks
FOR EACH ROW EXECUTE FUNCTION chime_count_tasks();
