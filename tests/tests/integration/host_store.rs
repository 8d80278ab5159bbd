//! The host on the store `--database` chooses: a PostgreSQL database (a throw-away one per
//! test, `scheduler_tests::pg::TestDb`) runs tasks as the SQLite file does; the host id is
//! made once per data directory (`--host-id` overrides it).

use std::time::Duration;

use agent_scheduler::model::Policy;
use agent_scheduler::store::api::{ChooseFn, TaskStore};
use agent_scheduler::store::pg::PgStore;
use agent_scheduler::store::transitions::Choice;
use scheduler_api::client::ClientError;
use scheduler_api::{Settings, SettingsPatch, StoreHealth, StoreKindName, TaskStatus};
use scheduler_tests::harness::wait_until;
use scheduler_tests::inprocess::{InProcessHost, refused, serve_flags};
use scheduler_tests::pg::TestDb;
use serde_json::json;

use crate::host_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_postgres_runs_tasks_and_keeps_its_host_id() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = InProcessHost::start_args(FakeArgs::fast_a(), &["--database", &db.url]).await;
    let c = s.client();
    let id = enqueue(c, "a red fox", json!({"n_iter": 2})).await;
    let t = wait_done(c, &id).await;
    assert_eq!(t.status, TaskStatus::Done);
    let results = c.results(&id).await.expect("the results");
    assert_eq!(results.len(), 2, "both images");
    let made = std::fs::read_to_string(s.dir.path().join("host-id")).expect("host-id written");
    let made = made.trim().to_owned();
    let (name, hex) = made.rsplit_once('-').expect("NAME-HEX");
    assert!(!name.is_empty(), "{made}");
    assert!(
        hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{made}"
    );
    // The SQLite file is not made: the queue is in PostgreSQL.
    assert!(!s.dir.path().join("queue.sqlite3").exists());
    let h = c.health().await.expect("health");
    assert_eq!(
        h.store,
        StoreHealth {
            kind: StoreKindName::Postgres,
            reachable: true
        }
    );
    assert_eq!(h.host_id.as_deref(), Some(made.as_str()));
    assert_eq!(h.hold, None);
    let lease = h.lease.expect("a shared store shows its leases");
    assert_eq!((lease.seconds, lease.held), (15, 0));
    // Its --backend is stored for every host, and still one backend here.
    let backends = c.backends().await.expect("backends");
    assert_eq!(backends.len(), 1, "{backends:?}");
    let db_store = PgStore::open(&db.url, "reader", Duration::from_secs(15))
        .await
        .expect("open");
    let stored: Vec<String> = db_store
        .added_backends()
        .await
        .expect("stored backends")
        .into_iter()
        .map(|a| a.url)
        .collect();
    assert_eq!(stored, vec![s.fake().url()]);

    // Restarted on the same data directory and database: the same id, the same history.
    let (dir, fake) = s.stop().await;
    let again =
        InProcessHost::start_with(fake, dir, |cfg| serve_flags(cfg, &["--database", &db.url]))
            .await;
    assert_eq!(
        again.api.task(&id).await.expect("the task").status,
        TaskStatus::Done
    );
    let kept = std::fs::read_to_string(again.dir.path().join("host-id")).unwrap();
    assert_eq!(kept.trim(), made, "made once");
    again.shut_down().await;
}

/// A claim of a host that is gone (its lease ran out, never renewed) is recovered by the
/// reclaimer of a running host, which then runs the task; `lease_s` is a setting (3..=600).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_host_is_gone_is_reclaimed_and_runs_here() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = InProcessHost::start_args(
        FakeArgs::fast_a(),
        &["--database", &db.url, "--start-paused"],
    )
    .await;
    let c = s.client();
    let id = enqueue(c, "a red fox", json!({})).await;
    // This host's backend takes nothing meanwhile: "run now" below wakes its worker at once.
    c.backend_action(scheduler_api::routes::BACKEND_DISABLE, "flag-1")
        .await
        .expect("disable");
    // Another host claims it, then is gone: its lease is never renewed.
    let gone = PgStore::open(&db.url, "gone-host", Duration::from_millis(300))
        .await
        .expect("open the database as another host");
    // The queue is paused here: "run now" lets the other host claim it.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    gone.run_now(id.clone(), now()).await.expect("run now");
    let first: ChooseFn = Box::new(|window, _| {
        (!window.is_empty()).then(|| Choice {
            index: 0,
            overtaken: Vec::new(),
        })
    });
    let claimed = gone
        .claim_next("http://gone.invalid".into(), now(), first)
        .await
        .expect("claim")
        .expect("the task is claimed");
    assert_eq!(claimed.task.id, id);
    assert_eq!(c.task(&id).await.expect("task").status, TaskStatus::Running);

    refused(
        c.update_settings(&SettingsPatch {
            lease_s: Some(2),
            ..SettingsPatch::default()
        })
        .await,
        422,
        "lease_s must be 3..=600",
    );
    let set = c
        .update_settings(&SettingsPatch {
            lease_s: Some(3),
            ..SettingsPatch::default()
        })
        .await
        .expect("lease_s 3");
    assert_eq!(set.lease_s, 3);
    c.backend_action(scheduler_api::routes::BACKEND_ENABLE, "flag-1")
        .await
        .expect("enable");
    resume(c).await;
    let t = wait_done(c, &id).await;
    assert_eq!(t.status, TaskStatus::Done, "recovered, then run here");
    s.shut_down().await;
}

/// On SQLite `/health` names the store and the host id, and shows no leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_on_sqlite_names_the_store_and_the_host() {
    let s = InProcessHost::start_args(FakeArgs::fast_a(), &["--host-id", "studio-1"]).await;
    let h = s.client().health().await.expect("health");
    assert_eq!(h.store, StoreHealth::default());
    assert_eq!(h.store.kind, StoreKindName::Sqlite);
    assert_eq!(h.host_id.as_deref(), Some("studio-1"));
    assert_eq!((h.lease, h.hold), (None, None));
    assert!(
        !s.dir.path().join("host-id").exists(),
        "--host-id overrides: no id is made"
    );
    s.shut_down().await;
}

/// The heartbeat renews a running claim's lease every third of it: another host never
/// finds it expired, though the run lasts longer than the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_claim_is_renewed_and_never_reclaimed() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // 3 steps of 1.4 s: the run outlasts the 3 s lease.
    let s = InProcessHost::start_args(
        FakeArgs::fast_a().step_ms(1400),
        &["--database", &db.url, "--start-paused"],
    )
    .await;
    let c = s.client();
    c.update_settings(&SettingsPatch {
        lease_s: Some(3),
        ..SettingsPatch::default()
    })
    .await
    .expect("lease_s 3");
    wait_until("the 3 s lease applied", LONG, || async {
        let h = c.health().await.ok()?;
        (h.lease?.seconds == 3).then_some(())
    })
    .await;
    let id = enqueue(c, "a slow fox", json!({})).await;
    resume(c).await;
    s.wait_status(&id, TaskStatus::Running).await;
    let other = PgStore::open(&db.url, "other-host", Duration::from_secs(3))
        .await
        .expect("open the database as another host");
    let policy = Policy::from(&Settings::default());
    let mut renewed_while_running = false;
    let deadline = std::time::Instant::now() + LONG;
    loop {
        assert!(std::time::Instant::now() < deadline, "the run ends");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let taken = other.reclaim_expired(policy, now).await.expect("reclaim");
        assert!(
            taken.is_empty(),
            "a renewed claim was taken over: {taken:?}"
        );
        let t = c.task(&id).await.expect("task");
        if t.status != TaskStatus::Running {
            assert_eq!(t.status, TaskStatus::Done);
            break;
        }
        let h = c.health().await.expect("health");
        let lease = h.lease.expect("leases");
        if lease.held == 1 && lease.renewed_ms_ago.is_some_and(|ms| ms < 3_000) {
            renewed_while_running = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(renewed_while_running, "the claim was renewed while it ran");
    s.shut_down().await;
}

/// A database that cannot be reached holds the queue (the host neither stops nor
/// panics; what needs the database answers 503); when it answers again the hold lifts by
/// itself and a task enqueued before runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_holds_the_queue_until_it_answers_again() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // Paused, so that the task waits for the outage to pass.
    let s = InProcessHost::start_args(
        FakeArgs::fast_a(),
        &["--database", &db.url, "--start-paused"],
    )
    .await;
    let c = s.client();
    let id = enqueue(c, "a patient fox", json!({})).await;

    db.disconnect().await;
    // What needs the database answers 503 and puts the queue on hold.
    match c.resume().await {
        Err(ClientError::Refused { status, body }) => {
            assert_eq!(status, 503, "{}", body.message);
            assert!(
                body.message.contains("database unreachable"),
                "{}",
                body.message
            );
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    let h = c
        .health()
        .await
        .expect("health answers without the database");
    assert_eq!(h.hold.as_deref(), Some("database unreachable"));
    assert_eq!(
        h.store,
        StoreHealth {
            kind: StoreKindName::Postgres,
            reachable: false
        }
    );
    assert!(h.paused, "the last known pause");

    db.reconnect().await;
    wait_until("the hold lifted by itself", LONG, || async {
        let h = c.health().await.ok()?;
        (h.hold.is_none() && h.store.reachable).then_some(())
    })
    .await;
    resume(c).await;
    let t = wait_done(c, &id).await;
    assert_eq!(
        t.status,
        TaskStatus::Done,
        "it ran once the database answered"
    );
    s.shut_down().await;
}

/// TLS to the database: a database named by a non-loopback name is reached over TLS with the
/// server's certificate verified (here: the local server's own certificate, Debian's
/// "snakeoil" for `localhost`, given as the CA, and `sslmode=require` since `localhost` is
/// local); the same server reached by a name its certificate does not hold is refused (the
/// certificate is verified against the URL's host).
#[tokio::test]
async fn the_database_connection_is_tls_verified_when_asked() {
    use agent_scheduler::store::pg::tls;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let cert = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let server_tls = cert.is_file().then_some(());
    let Some(()) = scheduler_tests::harness::available(
        "the PostgreSQL server's own certificate (/etc/ssl/certs/ssl-cert-snakeoil.pem)",
        server_tls,
        "Debian's postgresql package makes it (ssl = on)",
    ) else {
        return;
    };
    let url = db.url.replacen("@127.0.0.1:", "@localhost:", 1) + "?sslmode=require";
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    let verified = tls::connector_with_ca(&mut config, Some(cert)).unwrap();
    let (client, conn) = config
        .connect(verified)
        .await
        .expect("a verified TLS connection");
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the connection is encrypted");
    drop(client);

    let other_name = db.url.clone() + "?sslmode=require";
    let mut config: tokio_postgres::Config = other_name.parse().unwrap();
    let tls = tls::connector_with_ca(&mut config, Some(cert)).unwrap();
    let refused = config.connect(tls).await;
    assert!(
        refused.is_err(),
        "127.0.0.1 is not the certificate's name: refused"
    );

    // Loopback with the default mode connects plainly (nothing leaves the machine).
    let s = PgStore::open(&db.url, "plain", Duration::from_secs(15))
        .await
        .expect("open");
    assert!(s.kind() == agent_scheduler::store::api::StoreKind::Postgres);
}
