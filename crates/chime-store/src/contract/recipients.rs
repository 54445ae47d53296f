//! Recipients: push subscriptions, webhook endpoints, destinations, calendar feeds and
//! profiles, per user.

use super::*;

/// Push subscriptions are listed per user. Putting a known endpoint again (the browser
/// renewed its keys) keeps the stored id and creation instant, refreshes the keys, and
/// returns the stored record; the endpoint moves to whoever put it last.
pub async fn push_subscriptions_are_per_user_and_a_known_endpoint_keeps_its_id(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert!(subscriptions(&*store, &alice).await.is_empty());

    let phone = subscription(&alice, "sub_alice_phone", "https://push.example/phone", 10);
    let laptop = subscription(
        &alice,
        "sub_alice_laptop",
        "https://push.example/laptop",
        20,
    );
    let bobs = subscription(&bob, "sub_bob_phone", "https://push.example/bob", 30);
    for sub in [&phone, &laptop, &bobs] {
        assert_eq!(&put_subscription(&*store, sub).await, sub);
    }
    assert_eq!(
        subscriptions(&*store, &alice).await,
        [laptop.clone(), phone.clone()]
    );
    assert_eq!(
        subscriptions(&*store, &bob).await,
        std::slice::from_ref(&bobs)
    );

    let renewed = PushSubscriptionRecord {
        id: "sub_alice_phone_2".to_owned(),
        p256dh: "BNewKeyOfThePhone".to_owned(),
        auth: "new-auth-secret".to_owned(),
        created_at: at(500),
        ..phone.clone()
    };
    let stored = PushSubscriptionRecord {
        id: phone.id.clone(),
        created_at: phone.created_at,
        ..renewed.clone()
    };
    assert_eq!(put_subscription(&*store, &renewed).await, stored);
    assert_eq!(
        subscriptions(&*store, &alice).await,
        [laptop.clone(), stored.clone()]
    );

    // Bob signs in on alice's laptop: the browser's one subscription is now his.
    let moved = PushSubscriptionRecord {
        user_id: bob.clone(),
        id: "sub_bob_laptop".to_owned(),
        created_at: at(600),
        ..laptop.clone()
    };
    let moved_stored = PushSubscriptionRecord {
        id: laptop.id.clone(),
        created_at: laptop.created_at,
        ..moved.clone()
    };
    assert_eq!(put_subscription(&*store, &moved).await, moved_stored);
    assert_eq!(subscriptions(&*store, &alice).await, [stored]);
    assert_eq!(subscriptions(&*store, &bob).await, [moved_stored, bobs]);
    assert!(outbox(&*store).await.is_empty());
}

/// Removing a push subscription for a user removes only that user's (false for another's or
/// a missing one); removing it for no user (the push service said it is gone) removes it
/// whoever owns it.
pub async fn removing_a_push_subscription_honours_its_owner_when_given(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let alices = subscription(&alice, "sub_alice_phone", "https://push.example/alice", 10);
    let bobs = subscription(&bob, "sub_bob_phone", "https://push.example/bob", 20);
    put_subscription(&*store, &alices).await;
    put_subscription(&*store, &bobs).await;

    assert!(!remove_subscription(&*store, Some(&bob), &alices.id).await);
    assert_eq!(
        subscriptions(&*store, &alice).await,
        std::slice::from_ref(&alices)
    );
    assert!(remove_subscription(&*store, Some(&alice), &alices.id).await);
    assert!(subscriptions(&*store, &alice).await.is_empty());
    assert!(!remove_subscription(&*store, Some(&alice), &alices.id).await);

    assert!(remove_subscription(&*store, None, &bobs.id).await);
    assert!(subscriptions(&*store, &bob).await.is_empty());
    assert!(!remove_subscription(&*store, None, &bobs.id).await);
    assert!(!remove_subscription(&*store, None, "sub_never_stored").await);
}

/// Each user has at most one webhook endpoint: put, read back as written, replaced by a new
/// put, removed (false when there was none), never visible to another user.
pub async fn a_users_webhook_is_put_replaced_and_removed_per_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert_eq!(webhook(&*store, &alice).await, None);

    let first = webhook_endpoint(&alice, "https://hooks.example/alice", 10);
    put_webhook(&*store, &first).await;
    assert_eq!(webhook(&*store, &alice).await, Some(first.clone()));
    assert_eq!(webhook(&*store, &bob).await, None);

    let replaced = WebhookEndpoint {
        url: "https://hooks.example/alice/v2".to_owned(),
        secret: "whsec_rotated".to_owned(),
        created_at: at(50),
        ..first
    };
    put_webhook(&*store, &replaced).await;
    assert_eq!(webhook(&*store, &alice).await, Some(replaced.clone()));
    let bobs = webhook_endpoint(&bob, "https://hooks.example/bob", 20);
    put_webhook(&*store, &bobs).await;

    assert!(store.remove_webhook(&alice).await.expect("remove_webhook"));
    assert_eq!(webhook(&*store, &alice).await, None);
    assert!(!store.remove_webhook(&alice).await.expect("remove_webhook"));
    assert_eq!(webhook(&*store, &bob).await, Some(bobs));
    assert!(outbox(&*store).await.is_empty());
}

/// A user's destinations are listed oldest first, those made at the same instant by id, and
/// never among another user's. Publishes nothing.
pub async fn destinations_are_listed_per_user_oldest_first_then_by_id(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert!(destinations(&*store, &alice).await.is_empty());

    let family = destination_record(&alice, "dst_c_family", "Family chat", 30);
    let phone = destination_record(&alice, "dst_b_phone", "Phone (ntfy)", 10);
    let work = destination_record(&alice, "dst_a_work", "Work Slack", 10);
    let bobs = destination_record(&bob, "dst_bob", "Bob's Gotify", 20);
    for d in [&family, &phone, &bobs, &work] {
        put_destination(&*store, d).await;
    }
    assert_eq!(destinations(&*store, &alice).await, [work, phone, family]);
    assert_eq!(destinations(&*store, &bob).await, [bobs]);
    assert!(destinations(&*store, &user("carol")).await.is_empty());
    assert!(outbox(&*store).await.is_empty());
}

/// A destination reads back as put, by its owner and by its id alone (a chat service's
/// callback knows only the id, and learns the owner from the record); a missing id is `None`.
pub async fn a_destination_is_read_by_its_owner_or_by_its_id_alone(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let phone = destination_record(&alice, "dst_phone", "Phone (ntfy)", 10);
    put_destination(&*store, &phone).await;

    assert_eq!(
        destination(&*store, Some(&alice), &phone.id).await,
        Some(phone.clone())
    );
    assert_eq!(destination(&*store, None, &phone.id).await, Some(phone));
    assert_eq!(
        destination(&*store, Some(&alice), "dst_missing").await,
        None
    );
    assert_eq!(destination(&*store, None, "dst_missing").await, None);
}

/// Putting a destination under its id again replaces its name and URL: one record, which
/// keeps its creation instant and so its place in the list.
pub async fn putting_a_destination_again_replaces_its_name_and_url_and_keeps_its_place(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let alice = user("alice");
    let phone = destination_record(&alice, "dst_phone", "Phone (ntfy)", 10);
    let later = destination_record(&alice, "dst_later", "Later", 20);
    put_destination(&*store, &phone).await;
    put_destination(&*store, &later).await;

    let edited = DestinationRecord {
        name: "Old phone".to_owned(),
        url: "ntfy://ntfy.example/renamed-topic".to_owned(),
        created_at: at(500),
        ..phone.clone()
    };
    put_destination(&*store, &edited).await;
    let stored = DestinationRecord {
        created_at: phone.created_at,
        ..edited
    };
    assert_eq!(destinations(&*store, &alice).await, [stored.clone(), later]);
    assert_eq!(destination(&*store, None, &phone.id).await, Some(stored));
}

/// Another user's destination id is out of reach: a read with one's own user finds nothing, a
/// put under it is [`Error::Conflict`] and changes nothing (it neither takes the record over
/// nor edits it), and a remove returns false and keeps it.
pub async fn another_users_destination_id_can_be_neither_read_nor_replaced_nor_removed(
    f: &dyn StoreFactory,
) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let alices = destination_record(&alice, "dst_alice", "Family chat", 10);
    put_destination(&*store, &alices).await;

    assert_eq!(destination(&*store, Some(&bob), &alices.id).await, None);

    let takeover = DestinationRecord {
        user_id: bob.clone(),
        name: "Mine now".to_owned(),
        url: "ntfy://attacker.example/stolen".to_owned(),
        ..alices.clone()
    };
    match store.put_destination(&takeover).await {
        Err(Error::Conflict) => {}
        other => panic!("a put under another user's id must be a conflict, got {other:?}"),
    }
    assert_eq!(
        destination(&*store, None, &alices.id).await,
        Some(alices.clone())
    );
    assert!(destinations(&*store, &bob).await.is_empty());

    assert!(!remove_destination(&*store, &bob, &alices.id).await);
    assert_eq!(
        destinations(&*store, &alice).await,
        std::slice::from_ref(&alices)
    );
    assert!(outbox(&*store).await.is_empty());
}

/// Removing a destination removes it for good: true once, then false, and it is found
/// neither in its owner's list nor by its id; the owner's others stay.
pub async fn removing_a_destination_returns_false_the_second_time(f: &dyn StoreFactory) {
    let store = f.open().await;
    let alice = user("alice");
    let phone = destination_record(&alice, "dst_phone", "Phone (ntfy)", 10);
    let family = destination_record(&alice, "dst_family", "Family chat", 20);
    put_destination(&*store, &phone).await;
    put_destination(&*store, &family).await;

    assert!(remove_destination(&*store, &alice, &phone.id).await);
    assert!(!remove_destination(&*store, &alice, &phone.id).await);
    assert!(!remove_destination(&*store, &alice, "dst_never_stored").await);
    assert_eq!(destination(&*store, None, &phone.id).await, None);
    assert_eq!(destinations(&*store, &alice).await, [family]);
}

/// Each user has at most one calendar feed: none until made, generation 1, then each rotation
/// the next (an earlier URL stops working), read back per user, revoked (false when there was
/// none), and made again past every earlier generation, so no revoked URL works again.
/// Publishes nothing.
pub async fn a_calendar_feed_is_created_rotated_and_revoked_per_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    assert_eq!(store.feed(&alice).await.expect("feed"), None);
    let first = store
        .rotate_feed(&alice, at(10))
        .await
        .expect("rotate_feed");
    assert_eq!((first.generation, first.created_at), (1, at(10)));
    assert_eq!(store.feed(&alice).await.expect("feed"), Some(first));
    assert_eq!(store.feed(&bob).await.expect("feed"), None);
    let second = store
        .rotate_feed(&alice, at(20))
        .await
        .expect("rotate_feed");
    assert_eq!((second.generation, second.created_at), (2, at(20)));
    assert_eq!(store.feed(&alice).await.expect("feed"), Some(second));
    let bobs = store.rotate_feed(&bob, at(30)).await.expect("rotate_feed");
    assert_eq!(bobs.generation, 1);
    assert!(store.remove_feed(&alice).await.expect("remove_feed"));
    assert_eq!(store.feed(&alice).await.expect("feed"), None);
    assert!(!store.remove_feed(&alice).await.expect("remove_feed"));
    assert_eq!(store.feed(&bob).await.expect("feed"), Some(bobs));
    let again = store
        .rotate_feed(&alice, at(40))
        .await
        .expect("rotate_feed");
    assert_eq!(again.generation, 3, "past every revoked generation");
    assert!(outbox(&*store).await.is_empty());
}

/// Each user has at most one profile: none until put, read back as written, replaced by a new
/// put, never visible to another user, and no event published.
pub async fn a_users_profile_is_put_replaced_and_read_per_user(f: &dyn StoreFactory) {
    let store = f.open().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let profile = |user: &UserId, body: &str, micros: i64| ProfileRecord {
        user_id: user.clone(),
        body: body.to_owned(),
        updated_at: at(micros),
    };
    assert_eq!(store.profile(&alice).await.expect("profile"), None);

    let first = profile(&alice, r#"{"v":1,"timeZone":"Europe/Berlin"}"#, 10);
    store.put_profile(&first).await.expect("put_profile");
    assert_eq!(
        store.profile(&alice).await.expect("profile"),
        Some(first.clone())
    );
    assert_eq!(store.profile(&bob).await.expect("profile"), None);

    let replaced = profile(&alice, r#"{"v":1,"timeZone":null}"#, 20);
    store.put_profile(&replaced).await.expect("put_profile");
    let bobs = profile(&bob, r#"{"v":1}"#, 30);
    store.put_profile(&bobs).await.expect("put_profile");
    assert_eq!(
        store.profile(&alice).await.expect("profile"),
        Some(replaced)
    );
    assert_eq!(store.profile(&bob).await.expect("profile"), Some(bobs));
    assert!(outbox(&*store).await.is_empty());
}
