//! Browser sessions: live until they expire, replaced in one step, pending sign-ins taken once.

use super::*;

/// A session is read back exactly as put, anonymous or signed in with its token and a pending
/// sign-in; putting it again replaces it; another id finds nothing.
pub async fn a_session_is_read_back_as_put_and_put_again_replaces_it(f: &dyn StoreFactory) {
    let store = f.open().await;
    let anonymous = session_record("anon", None, 100);
    store.put_session(&anonymous).await.expect("put");
    assert_eq!(live_session(&*store, "anon", 0).await, Some(anonymous));

    let mut signed_in = session_record("alice-session", Some("alice"), 200);
    signed_in.access_token = Some("eyJ.access.token".to_owned());
    signed_in.access_expires_at = Some(at(150));
    signed_in.pending = Some(pending_sign_in("state-1"));
    store.put_session(&signed_in).await.expect("put");
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(signed_in.clone())
    );

    let replaced = SessionRecord {
        csrf: "csrf-2".to_owned(),
        pending: None,
        ..signed_in
    };
    store.put_session(&replaced).await.expect("put again");
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(replaced)
    );
    assert_eq!(live_session(&*store, "nobody", 0).await, None);
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 2);
}

/// A session is live until its `expires_at`, exclusive: at and after it, it is absent, its
/// pending sign-in cannot be set nor taken, and it is not counted.
pub async fn an_expired_session_is_absent(f: &dyn StoreFactory) {
    let store = f.open().await;
    let mut session = session_record("s", Some("alice"), 100);
    session.pending = Some(pending_sign_in("state"));
    store.put_session(&session).await.expect("put");
    assert!(live_session(&*store, "s", 99).await.is_some());
    assert_eq!(live_session(&*store, "s", 100).await, None);
    assert_eq!(live_session(&*store, "s", 500).await, None);
    assert_eq!(store.count_sessions(at(100)).await.expect("count"), 0);
    assert!(!store
        .set_pending("s", &pending_sign_in("later"), at(100))
        .await
        .expect("set_pending"));
    assert_eq!(store.take_pending("s", at(100)).await.expect("take"), None);
    // Still there for a caller whose clock is behind (nothing was changed).
    assert_eq!(live_session(&*store, "s", 0).await, Some(session));
}

/// Signing in replaces the session: the old id is gone, the new one is there, in one step;
/// without an old id it only inserts.
pub async fn replace_session_removes_the_old_id_and_puts_the_new_one(f: &dyn StoreFactory) {
    let store = f.open().await;
    let anonymous = session_record("old", None, 100);
    store.put_session(&anonymous).await.expect("put");
    let other = session_record("someone-else", None, 100);
    store.put_session(&other).await.expect("put");

    let signed_in = session_record("new", Some("alice"), 500);
    store
        .replace_session(Some("old"), &signed_in)
        .await
        .expect("replace");
    assert_eq!(live_session(&*store, "old", 0).await, None);
    assert_eq!(live_session(&*store, "new", 0).await, Some(signed_in));
    assert_eq!(live_session(&*store, "someone-else", 0).await, Some(other));

    let fresh = session_record("fresh", Some("bob"), 500);
    store.replace_session(None, &fresh).await.expect("insert");
    assert_eq!(live_session(&*store, "fresh", 0).await, Some(fresh));
    // An old id that is already gone is no error.
    let again = session_record("again", Some("bob"), 500);
    store
        .replace_session(Some("old"), &again)
        .await
        .expect("replace a missing old id");
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 4);

    assert!(store.remove_session("fresh").await.expect("remove"));
    assert!(!store.remove_session("fresh").await.expect("remove again"));
    assert_eq!(live_session(&*store, "fresh", 0).await, None);
}

/// A pending sign-in is set on a live session only (nothing else of it changes) and taken
/// once: a second take, and a take of another session, find nothing.
pub async fn a_pending_sign_in_is_set_on_a_live_session_and_taken_once(f: &dyn StoreFactory) {
    let store = f.open().await;
    let session = session_record("s", None, 100);
    store.put_session(&session).await.expect("put");
    assert!(!store
        .set_pending("missing", &pending_sign_in("x"), at(0))
        .await
        .expect("set_pending"));
    assert_eq!(store.take_pending("s", at(0)).await.expect("take"), None);

    let pending = pending_sign_in("state-1");
    assert!(store
        .set_pending("s", &pending, at(0))
        .await
        .expect("set_pending"));
    assert_eq!(
        live_session(&*store, "s", 0).await,
        Some(SessionRecord {
            pending: Some(pending.clone()),
            ..session.clone()
        })
    );
    assert_eq!(
        store.take_pending("s", at(0)).await.expect("take"),
        Some(pending)
    );
    assert_eq!(store.take_pending("s", at(0)).await.expect("take"), None);
    assert_eq!(live_session(&*store, "s", 0).await, Some(session));
}

/// Two callers taking one pending sign-in at once, also from two store instances on the same
/// storage (two web instances racing on one callback): exactly one of them gets it.
pub async fn a_pending_sign_in_taken_concurrently_is_given_to_exactly_one_caller(
    f: &dyn StoreFactory,
) {
    let (one, two) = (f.open().await, f.open().await);
    for round in 0..20 {
        let id = format!("s{round}");
        let mut session = session_record(&id, None, 100);
        session.pending = Some(pending_sign_in(&format!("state-{round}")));
        one.put_session(&session).await.expect("put");
        let (a, b, c) = tokio::join!(
            one.take_pending(&id, at(0)),
            two.take_pending(&id, at(0)),
            two.take_pending(&id, at(0)),
        );
        let taken: Vec<_> = [a, b, c]
            .into_iter()
            .filter_map(|r| r.expect("take"))
            .collect();
        assert_eq!(taken, vec![pending_sign_in(&format!("state-{round}"))]);
    }
}

/// Purging removes exactly the sessions expired at `now`.
pub async fn purge_sessions_removes_only_the_expired_ones(f: &dyn StoreFactory) {
    let store = f.open().await;
    for (id, expires) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
        store
            .put_session(&session_record(id, None, expires))
            .await
            .expect("put");
    }
    assert_eq!(store.purge_sessions(at(20)).await.expect("purge"), 2);
    assert_eq!(store.purge_sessions(at(20)).await.expect("purge again"), 0);
    // Read with a clock far behind, so expiry does not hide what purge left.
    assert_eq!(live_session(&*store, "a", -1000).await, None);
    assert_eq!(live_session(&*store, "b", -1000).await, None);
    assert!(live_session(&*store, "c", 0).await.is_some());
    assert!(live_session(&*store, "d", 0).await.is_some());
    assert_eq!(store.count_sessions(at(0)).await.expect("count"), 2);
}

/// Sessions, with their tokens and pending sign-ins, survive a restart.
pub async fn sessions_survive_a_restart(f: &dyn StoreFactory) {
    let mut signed_in = session_record("alice-session", Some("alice"), 500);
    signed_in.access_token = Some("eyJ.access.token".to_owned());
    signed_in.access_expires_at = Some(at(400));
    let mut pending = session_record("pending", None, 100);
    pending.pending = Some(pending_sign_in("state"));
    {
        let store = f.open().await;
        store.put_session(&signed_in).await.expect("put");
        store.put_session(&pending).await.expect("put");
    }
    let store = f.open().await;
    assert_eq!(
        live_session(&*store, "alice-session", 0).await,
        Some(signed_in)
    );
    assert_eq!(live_session(&*store, "pending", 0).await, Some(pending));
}
