//! Tasks: ownership, listing and pagination, optimistic concurrency.

use super::*;

/// Many writes at once, some of which fail (an update at a stale version), each keep their own
/// outcome: an adapter that commits concurrent writes together (SQLite's group commit) must
/// neither lose the good ones nor keep anything of the failed ones.
pub async fn concurrent_writes_commit_independently_when_some_fail(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let existing = task(&alice, "Existing");
    create(&*store, &existing).await;
    if let Some(last) = outbox(&*store).await.last() {
        ack(&*store, &[last.seq]).await;
    }

    let mut writes = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        let new = task(&alice, &format!("Task {i}"));
        let mut stale = existing.clone();
        stale.version = 5;
        writes.push(tokio::spawn(async move {
            let created = store.create_task(&new, created_event(&new)).await;
            let conflicted = store.update_task(&stale, updated_event(&stale)).await;
            (new, created, conflicted)
        }));
    }
    let mut created = Vec::new();
    for write in writes {
        let (task, result, conflicted) = write.await.expect("write task");
        result.expect("a good write succeeds whatever its neighbours do");
        assert!(
            matches!(conflicted, Err(crate::Error::Conflict)),
            "{conflicted:?}"
        );
        created.push(task);
    }
    for task in &created {
        assert_eq!(get(&*store, &alice, task.id).await.as_ref(), Some(task));
    }
    assert_eq!(get(&*store, &alice, existing.id).await, Some(existing));
    let events = outbox_events(&*store).await;
    assert_eq!(
        events.len(),
        created.len(),
        "one event per create, none for a conflict"
    );
}

/// A new store has no tasks, schedule, inbox, history, pending deliveries, recipients or
/// outbox.
pub async fn a_new_store_is_empty(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    assert!(list(&*store, &alice, None, 100).await.is_empty());
    assert_eq!(store.next_due().await.expect("next_due"), None);
    assert!(outbox(&*store).await.is_empty());
    assert!(inbox(&*store, &alice, None, 100).await.is_empty());
    assert_eq!(unread(&*store, &alice).await, 0);
    assert!(history(&*store, &alice, TaskId::new(), None, 100)
        .await
        .is_empty());
    for channel in Channel::ALL {
        assert_eq!(next_delivery(&*store, channel).await, None);
        assert!(claim(&*store, channel, at(0), at(60), 10).await.is_empty());
    }
    assert!(pending_of(&*store, &alice, TaskId::new()).await.is_empty());
    assert!(subscriptions(&*store, &alice).await.is_empty());
    assert_eq!(webhook(&*store, &alice).await, None);
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 0);
}

/// `get_task` returns the task exactly as created: id, owner, version, body and instants.
pub async fn a_created_task_is_returned_by_get_as_written(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(get(&*store, &alice, task.id).await, Some(task.clone()));
    assert_eq!(get(&*store, &alice, TaskId::new()).await, None);
}

/// Another user cannot see a task, by id or in a list.
pub async fn a_task_is_invisible_to_another_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(get(&*store, &bob, task.id).await, None);
    assert!(list(&*store, &bob, None, 100).await.is_empty());
}

/// `task_by_id` (the audited admin read) finds a task whoever owns it, and nothing else.
pub async fn task_by_id_finds_any_users_task_for_the_admin_read(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;

    assert_eq!(
        store.task_by_id(task.id).await.expect("task_by_id"),
        Some(task.clone())
    );
    assert_eq!(
        store.task_by_id(TaskId::new()).await.expect("task_by_id"),
        None
    );
}

/// `list_tasks` returns the user's tasks only, in id order whatever the order they were
/// created in, `limit` at a time after the cursor `after`, also when the cursor's task has
/// since been deleted; `count_tasks` counts the user's tasks only.
pub async fn list_tasks_returns_only_the_users_tasks_in_id_order_and_paginates(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    // Ids are made in order, then created out of order, so insertion order is not id order.
    let alices: Vec<TaskRecord> = (0..5)
        .map(|i| task(&alice, &format!("Alice's task {i}")))
        .collect();
    let bobs: Vec<TaskRecord> = (0..3)
        .map(|i| task(&bob, &format!("Bob's task {i}")))
        .collect();
    for i in [2, 0, 4, 1, 3] {
        create(&*store, &alices[i]).await;
        if let Some(b) = bobs.get(i) {
            create(&*store, b).await;
        }
    }

    assert_eq!(list(&*store, &alice, None, 100).await, alices);
    assert_eq!(list(&*store, &bob, None, 100).await, bobs);
    assert_eq!(store.count_tasks(&alice).await.expect("count"), 5);
    assert_eq!(store.count_tasks(&bob).await.expect("count"), 3);
    assert_eq!(store.count_tasks(&user("carol")).await.expect("count"), 0);

    assert_eq!(list(&*store, &alice, None, 2).await, alices[0..2]);
    assert_eq!(
        list(&*store, &alice, Some(alices[1].id), 2).await,
        alices[2..4]
    );
    assert_eq!(
        list(&*store, &alice, Some(alices[3].id), 2).await,
        alices[4..]
    );
    assert!(list(&*store, &alice, Some(alices[4].id), 2)
        .await
        .is_empty());
    assert!(list(&*store, &alice, None, 0).await.is_empty());

    let deleted = &alices[2];
    assert!(store
        .delete_task(&alice, deleted.id, 1, deleted_event(deleted, 1))
        .await
        .expect("delete"));
    assert_eq!(
        list(&*store, &alice, Some(deleted.id), 10).await,
        alices[3..]
    );
    assert_eq!(store.count_tasks(&alice).await.expect("count"), 4);
}

/// `create_task_within` creates while the owner has fewer than `limit` tasks: forty creates
/// racing from two instances (two handles on the same storage) for a limit of 7 create exactly
/// 7, another user is not counted, a delete frees one place, and `count_tasks` agrees.
pub async fn the_task_limit_holds_exactly_when_creates_race_from_two_instances(
    f: &dyn StoreFactory,
) {
    const LIMIT: u64 = 7;
    let (one, two) = (f.open().await, f.open().await);
    let (alice, bob) = (user("alice"), user("bob"));
    create(&*one, &task(&bob, "Bob's")).await;
    let mut racing = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let new = task(&alice, &format!("Task {i}"));
        racing.push(tokio::spawn(async move {
            let created = store
                .create_task_within(&new, created_event(&new), LIMIT)
                .await
                .expect("create within the limit");
            created.then_some(new)
        }));
    }
    let mut created = Vec::new();
    for race in racing {
        created.extend(race.await.expect("join"));
    }
    assert_eq!(created.len() as u64, LIMIT, "creates past the limit");
    assert_eq!(one.count_tasks(&alice).await.expect("count"), LIMIT);
    assert_eq!(list(&*two, &alice, None, 100).await.len() as u64, LIMIT);
    assert_eq!(one.count_tasks(&bob).await.expect("count"), 1);

    let extra = task(&alice, "One too many");
    assert!(!one
        .create_task_within(&extra, created_event(&extra), LIMIT)
        .await
        .expect("refused"));
    assert!(one.get_task(&alice, extra.id).await.expect("get").is_none());

    let freed = &created[0];
    assert!(two
        .delete_task(&alice, freed.id, 1, deleted_event(freed, 1))
        .await
        .expect("delete"));
    assert_eq!(one.count_tasks(&alice).await.expect("count"), LIMIT - 1);
    assert!(one
        .create_task_within(&extra, created_event(&extra), LIMIT)
        .await
        .expect("a place was freed"));
}

/// An update at the stored version + 1 replaces body and modification instant, keeps the
/// creation instant, and returns true; a further update works the same.
pub async fn an_update_at_the_next_version_replaces_the_task_and_bumps_its_version(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;

    let v2 = edited(&v1, "Water the plants and the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update to v2"));
    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2.clone()));

    let v3 = edited(&v2, "Water the herbs", 120);
    assert!(update(&*store, &v3).await.expect("update to v3"));
    let stored = get(&*store, &alice, v1.id).await.expect("the task exists");
    assert_eq!(stored, v3);
    assert_eq!(stored.version, 3);
    assert_eq!(stored.created_at, v1.created_at);
}

/// An update whose version is not the stored one + 1 (repeated, behind or ahead) is
/// [`Error::Conflict`], and leaves the task and the outbox as they were.
pub async fn an_update_at_a_stale_version_is_a_conflict_and_changes_nothing(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update to v2"));
    let before = outbox(&*store).await;

    for version in [1, 2, 4] {
        let stale = TaskRecord {
            version,
            ..edited(&v1, "A lost update", 90)
        };
        match update(&*store, &stale).await {
            Err(Error::Conflict) => {}
            other => panic!("an update at version {version} over version 2: {other:?}"),
        }
    }

    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2));
    assert_eq!(
        outbox(&*store).await,
        before,
        "a conflict publishes nothing"
    );
}

/// Updating a task that does not exist, or that belongs to someone else, returns false and
/// changes and publishes nothing.
pub async fn an_update_of_a_missing_or_another_users_task_returns_false_and_writes_nothing(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let plants = task(&alice, "Water the plants");
    create(&*store, &plants).await;
    let before = outbox(&*store).await;

    let missing = edited(&task(&alice, "Never created"), "Still not", 60);
    assert!(!update(&*store, &missing)
        .await
        .expect("update a missing task"));
    let hijack = TaskRecord {
        user_id: bob.clone(),
        ..edited(&plants, "Bob was here", 60)
    };
    assert!(!update(&*store, &hijack)
        .await
        .expect("update another user's task"));

    assert_eq!(get(&*store, &alice, plants.id).await, Some(plants));
    assert_eq!(get(&*store, &alice, missing.id).await, None);
    assert_eq!(outbox(&*store).await, before);
}

/// A delete at the stored version removes the task, publishes `task_deleted`, and returns
/// true; deleting it again returns false.
pub async fn a_delete_at_the_current_version_removes_the_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update"));

    let event = deleted_event(&v2, 2);
    assert!(store
        .delete_task(&alice, v1.id, 2, event.clone())
        .await
        .expect("delete"));
    assert_eq!(get(&*store, &alice, v1.id).await, None);
    assert!(list(&*store, &alice, None, 100).await.is_empty());
    let rows = outbox(&*store).await;
    assert_eq!(rows.last().map(as_event), Some(event.clone()));

    assert!(!store
        .delete_task(&alice, v1.id, 2, event)
        .await
        .expect("delete again"));
    assert_eq!(outbox(&*store).await, rows);
}

/// A delete at any other version is [`Error::Conflict`] and leaves the task and the outbox
/// alone.
pub async fn a_delete_at_a_wrong_version_is_a_conflict_and_keeps_the_task(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let v1 = task(&alice, "Water the plants");
    create(&*store, &v1).await;
    let v2 = edited(&v1, "Water the herbs", 60);
    assert!(update(&*store, &v2).await.expect("update"));
    let before = outbox(&*store).await;

    for version in [1, 3] {
        match store
            .delete_task(&alice, v1.id, version, deleted_event(&v2, version))
            .await
        {
            Err(Error::Conflict) => {}
            other => panic!("a delete at version {version} of version 2: {other:?}"),
        }
    }
    assert_eq!(get(&*store, &alice, v1.id).await, Some(v2));
    assert_eq!(
        outbox(&*store).await,
        before,
        "a conflict publishes nothing"
    );
}

/// Deleting a task that does not exist, or that belongs to someone else, returns false and
/// changes and publishes nothing.
pub async fn a_delete_of_a_missing_or_another_users_task_returns_false(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let task = task(&alice, "Water the plants");
    create(&*store, &task).await;
    let before = outbox(&*store).await;

    assert!(!store
        .delete_task(&bob, task.id, 1, deleted_event(&task, 1))
        .await
        .expect("delete another user's task"));
    let missing = TaskId::new();
    assert!(!store
        .delete_task(&alice, missing, 1, deleted_event(&task, 1))
        .await
        .expect("delete a missing task"));

    assert_eq!(get(&*store, &alice, task.id).await, Some(task));
    assert_eq!(outbox(&*store).await, before);
}
