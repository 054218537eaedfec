//! Subscription versions: create, unchanged, update, delete, history.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use signalbox_store::{PutOutcome, SubscriptionError};

#[test]
fn versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        let sub = subscription("s1", "out.a");
        assert_eq!(
            store.put_subscription(sub.clone()).unwrap(),
            PutOutcome::Created(1)
        );
        // Same content, whatever version the caller passes.
        let mut again = sub.clone();
        again.version = 42;
        assert_eq!(
            store.put_subscription(again).unwrap(),
            PutOutcome::Unchanged(1)
        );
        assert_eq!(
            store.put_subscription(sub).unwrap(),
            PutOutcome::Unchanged(1)
        );
        assert_eq!(
            store.put_subscription(subscription("s1", "out.b")).unwrap(),
            PutOutcome::Updated(2)
        );
        assert_eq!(
            store.put_subscription(subscription("s2", "out.c")).unwrap(),
            PutOutcome::Created(1)
        );
    }
    let store = open(&path);
    let current = store.subscription("s1").unwrap().unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(current.action.subject, "out.b");
    let ids: Vec<(String, u64)> = store
        .subscriptions()
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.version))
        .collect();
    assert_eq!(ids, vec![("s1".into(), 2), ("s2".into(), 1)]);
    let history: Vec<(u64, String)> = store
        .subscription_history("s1")
        .unwrap()
        .into_iter()
        .map(|s| (s.version, s.action.subject))
        .collect();
    assert_eq!(history, vec![(1, "out.a".into()), (2, "out.b".into())]);

    assert!(store.delete_subscription("s1").unwrap());
    assert!(!store.delete_subscription("s1").unwrap());
    assert!(store.subscription("s1").unwrap().is_none());
    // The old version is still resolvable (firings refer to it).
    assert_eq!(
        store
            .subscription_version("s1", 1)
            .unwrap()
            .unwrap()
            .action
            .subject,
        "out.a"
    );
    // Re-created after a delete: the version continues, never reused.
    assert_eq!(
        store.put_subscription(subscription("s1", "out.a")).unwrap(),
        PutOutcome::Created(3)
    );
    assert_eq!(PutOutcome::Created(3).version(), 3);
    let stats = store.stats().unwrap();
    assert_eq!((stats.subscriptions, stats.subscription_versions), (2, 4));
}

#[test]
fn empty_id_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut sub = subscription("s1", "out.a");
    sub.id = String::new();
    assert!(matches!(
        store.put_subscription(sub),
        Err(SubscriptionError::EmptyId)
    ));
}
