//! SQL-table projections over the account domain, one per database (the SQL is the same),
//! and the check both backends run.

use std::time::Duration;

use annals::Checkpoint;
use annals::prelude::*;
use annals::projection::{EventMeta, ProjectionError, Runner, SqlProjection, SqlStore};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::domain::{Account, Deposit, Deposited, Open, Opened};

/// Creates `$table` with its columns: account, owner, balance, events applied.
macro_rules! totals {
    ($name:literal, $ty:ident, $db:ident, $table:literal) => {
        /// Each account's owner, balance and events applied, in a table of its own.
        #[derive(Default)]
        pub struct $ty;

        #[projection(name = $name)]
        impl $ty {
            #[setup]
            async fn setup(tx: &mut Transaction<'_, $db>) -> Result<(), sqlx::Error> {
                sqlx::query(concat!(
                    "CREATE TABLE IF NOT EXISTS ",
                    $table,
                    " (account TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '', \
                     balance BIGINT NOT NULL DEFAULT 0, events BIGINT NOT NULL DEFAULT 0, \
                     last_position BIGINT NOT NULL DEFAULT 0)"
                ))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[reset]
            async fn reset(tx: &mut Transaction<'_, $db>) -> Result<(), sqlx::Error> {
                sqlx::query(concat!("DELETE FROM ", $table))
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            #[handle]
            async fn opened(
                tx: &mut Transaction<'_, $db>,
                e: &Opened,
                meta: &EventMeta,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(concat!(
                    "INSERT INTO ",
                    $table,
                    " (account, owner, events, last_position) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (account) DO UPDATE SET owner = excluded.owner, \
                     events = ",
                    $table,
                    ".events + 1, last_position = excluded.last_position"
                ))
                .bind(&meta.stream_id)
                .bind(&e.owner)
                .bind(meta.position as i64)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[handle]
            async fn deposited(
                tx: &mut Transaction<'_, $db>,
                e: &Deposited,
                meta: &EventMeta,
            ) -> Result<(), String> {
                // Written first, so a failure after it shows whether the batch rolled back.
                sqlx::query(concat!(
                    "INSERT INTO ",
                    $table,
                    " (account, balance, events, last_position) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (account) DO UPDATE SET balance = ",
                    $table,
                    ".balance + excluded.balance, events = ",
                    $table,
                    ".events + 1, last_position = excluded.last_position"
                ))
                .bind(&meta.stream_id)
                .bind(e.amount as i64)
                .bind(meta.position as i64)
                .execute(&mut **tx)
                .await
                .map_err(|e| e.to_string())?;
                if e.amount == 13 {
                    return Err("thirteen is unlucky".to_owned());
                }
                if e.amount == 666 {
                    panic!("the beast");
                }
                Ok(())
            }
        }
    };
}

totals!("account_totals", SqliteTotals, Sqlite, "account_totals");
totals!(
    "account_totals",
    PostgresTotals,
    Postgres,
    "annals_test_account_totals"
);

async fn open<S: EventStore>(store: &S, id: &str) {
    Repository::<Account, _>::new(store.clone())
        .execute(id, Open(format!("owner of {id}")))
        .await
        .expect("open");
}

async fn deposit<S: EventStore>(store: &S, id: &str, amount: u64) -> Checkpoint {
    Repository::<Account, _>::new(store.clone())
        .execute(id, Deposit(amount))
        .await
        .expect("deposit")
        .last_checkpoint
        .expect("an event")
}

/// A SQL-table projection's rows match the log exactly once, across runners stopped and
/// started again; a rebuild replaces the tables whole; a failing handler stops the
/// projection before its event, with everything before it committed and nothing of it.
/// `rows` reads the table: (account, owner, balance, events applied), by account.
pub async fn tables_follow_the_log<S, P, R, F>(store: S, rows: R)
where
    S: SqlStore,
    P: SqlProjection<Database = S::Database>,
    R: Fn() -> F,
    F: std::future::Future<Output = Vec<(String, String, i64, i64)>>,
{
    let wait = Duration::from_secs(10);
    for id in ["a", "b", "c"] {
        open(&store, id).await;
    }
    let mut last = Checkpoint::START;
    for n in 1..=9u64 {
        last = deposit(&store, ["a", "b", "c"][(n % 3) as usize], n).await;
        // A runner of its own each time: each goes on from the stored checkpoint.
        if n % 4 == 0 {
            let runner = Runner::new(store.clone()).with_tables::<P>();
            runner.catch_up_to(last, wait).await.expect("caught up");
        }
    }
    let runner = Runner::new(store.clone()).with_tables::<P>();
    runner.catch_up_to(last, wait).await.expect("caught up");
    let expected = vec![
        (
            "account-a".to_owned(),
            "owner of a".to_owned(),
            3 + 6 + 9,
            4,
        ),
        (
            "account-b".to_owned(),
            "owner of b".to_owned(),
            1 + 4 + 7,
            4,
        ),
        (
            "account-c".to_owned(),
            "owner of c".to_owned(),
            2 + 5 + 8,
            4,
        ),
    ];
    assert_eq!(rows().await, expected, "each event applied once");

    let (read, _) = runner.rebuild_tables::<P>().await.expect("rebuilt");
    assert_eq!(read, 12);
    assert_eq!(rows().await, expected, "the rebuild gives the same rows");

    deposit(&store, "a", 100).await;
    let poison = deposit(&store, "b", 13).await;
    let last = deposit(&store, "c", 1).await;
    match runner.catch_up_to(last, wait).await {
        Err(ProjectionError::Handler {
            stream,
            position,
            source,
            ..
        }) => {
            assert_eq!((stream.as_str(), position), ("account-b", poison.position));
            assert_eq!(source.message, "thirteen is unlucky");
        }
        other => panic!("expected the handler's failure, got {other:?}"),
    }
    let after = rows().await;
    assert_eq!(
        (after[0].2, after[0].3),
        (118, 5),
        "the event before it committed"
    );
    assert_eq!(
        (after[1].2, after[1].3),
        (12, 4),
        "nothing of the failed event"
    );
    assert_eq!((after[2].2, after[2].3), (15, 4), "nothing after it");
}

/// A SQL handler that panics is reported like one that fails: the projection stops before
/// its event, everything before it committed, nothing of it; and a rebuild in one
/// transaction works on a database of one connection too.
pub async fn sql_handler_panics_are_reported<S, P, R, F>(store: S, rows: R)
where
    S: SqlStore,
    P: SqlProjection<Database = S::Database>,
    R: Fn() -> F,
    F: std::future::Future<Output = Vec<(String, String, i64, i64)>>,
{
    open(&store, "p").await;
    deposit(&store, "p", 5).await;
    let runner = Runner::new(store.clone()).with_tables::<P>();
    let (read, _) = runner.rebuild_tables::<P>().await.expect("rebuilt");
    assert_eq!(read, 2);
    let last = deposit(&store, "p", 666).await;
    match runner.catch_up_to(last, Duration::from_secs(10)).await {
        Err(ProjectionError::Handler { stream, source, .. }) => {
            assert_eq!(stream, "account-p");
            assert!(source.message.contains("the beast"), "{}", source.message);
        }
        other => panic!("expected the panic as a failure, got {other:?}"),
    }
    let after = rows().await;
    assert_eq!((after[0].2, after[0].3), (5, 2));
}

/// Each deposit applied, in the order applied, per account: a deposit of 13 fails until
/// its stream is in [`FIXED`](crate::views::FIXED); it goes to the dead letters after one
/// try, the later deposits of its stream parked behind it.
macro_rules! careful {
    ($ty:ident, $db:ident, $table:literal) => {
        /// Deposits in the order applied, in a table of its own.
        #[derive(Default)]
        pub struct $ty;

        #[projection(name = "careful_deposits", on_error = "dead_letter", tries = 1)]
        impl $ty {
            #[setup]
            async fn setup(tx: &mut Transaction<'_, $db>) -> Result<(), sqlx::Error> {
                sqlx::query(concat!(
                    "CREATE TABLE IF NOT EXISTS ",
                    $table,
                    " (n BIGINT PRIMARY KEY, account TEXT NOT NULL, amount BIGINT NOT NULL)"
                ))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            #[handle]
            async fn deposited(
                tx: &mut Transaction<'_, $db>,
                e: &Deposited,
                meta: &EventMeta,
            ) -> Result<(), String> {
                let fixed = crate::views::FIXED
                    .lock()
                    .is_ok_and(|fixed| fixed.contains(&meta.stream_id));
                if e.amount == 13 && !fixed {
                    return Err("thirteen is not handled yet".to_owned());
                }
                sqlx::query(concat!(
                    "INSERT INTO ",
                    $table,
                    " (n, account, amount) SELECT COALESCE(MAX(n), 0) + 1, $1, $2 FROM ",
                    $table
                ))
                .bind(&meta.stream_id)
                .bind(e.amount as i64)
                .execute(&mut **tx)
                .await
                .map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    };
}

careful!(SqliteCareful, Sqlite, "careful_deposits");
careful!(PostgresCareful, Postgres, "annals_test_careful_deposits");

/// A SQL-table projection that keeps dead letters keeps each stream's order: a poison
/// event's later events in its stream wait behind it while other streams go on; before
/// the fix a retry fails and changes nothing; after it, `retry_stream` applies them in
/// their order, with the handlers' writes, in one transaction, and records it.
/// `rows` reads the table: (account, amount) in the order applied.
pub async fn sql_dead_letters_keep_each_stream_in_order<S, P, R, F>(store: S, rows: R)
where
    S: SqlStore<Database = P::Database>,
    P: SqlProjection,
    R: Fn() -> F,
    F: std::future::Future<Output = Vec<(String, i64)>>,
{
    use annals::projection::DeadLetters;
    let id = |name: &str| format!("{name}{}", P::VERSION);
    let (k, o) = (id("dk"), id("do"));
    open(&store, &k).await;
    open(&store, &o).await;
    deposit(&store, &k, 1).await;
    deposit(&store, &k, 13).await;
    deposit(&store, &k, 2).await;
    deposit(&store, &o, 5).await;
    let last = deposit(&store, &k, 3).await;
    let runner = Runner::new(store.clone()).with_tables::<P>();
    runner
        .catch_up_to(last, Duration::from_secs(10))
        .await
        .expect("the projection goes on past the poison");
    let (sk, so) = (format!("account-{k}"), format!("account-{o}"));
    let of = |all: &[(String, i64)], stream: &str| -> Vec<i64> {
        all.iter()
            .filter(|(a, _)| a == stream)
            .map(|(_, n)| *n)
            .collect()
    };
    let all = rows().await;
    assert_eq!(of(&all, &so), [5], "other streams go on");
    assert_eq!(of(&all, &sk), [1], "nothing after the poison in its stream");
    let letters = DeadLetters::<P, _>::new(store.clone());
    let held = letters.list().await.expect("list");
    let tries: Vec<(u64, u32)> = held
        .iter()
        .map(|l| (l.stream_version, l.attempts))
        .collect();
    assert_eq!(tries, [(3, 1), (4, 0), (5, 0)], "{held:?}");
    assert!(matches!(
        letters.retry_stream(&sk).await,
        Err(ProjectionError::Handler { .. })
    ));
    assert_eq!(of(&rows().await, &sk), [1], "a failed retry writes nothing");
    assert_eq!(letters.list().await.expect("list").len(), 3);

    crate::views::FIXED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(sk.clone());
    assert_eq!(letters.retry_stream(&sk).await.expect("retried"), 3);
    assert_eq!(of(&rows().await, &sk), [1, 13, 2, 3], "in their order");
    assert!(letters.list().await.expect("list").is_empty());
    let next = deposit(&store, &k, 4).await;
    runner
        .catch_up_to(next, Duration::from_secs(10))
        .await
        .expect("caught up");
    assert_eq!(of(&rows().await, &sk), [1, 13, 2, 3, 4]);
    let actions = letters.actions().await.expect("actions");
    assert_eq!(actions.len(), 1);
    assert_eq!(
        (actions[0].action.as_str(), actions[0].events),
        ("retry", 3)
    );
}
