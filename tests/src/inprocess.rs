//! The real host in this test process: [`agent_scheduler::run`] on `127.0.0.1:0` with a
//! temporary data folder, driving the in-process fake SD.Next, talked to through the typed
//! client (`scheduler_api::client::Client`) like the process-level hosts of
//! [`crate::harness`]. For the tests that do not need to SIGKILL a process.

use std::time::Duration;

use agent_scheduler::RunError;
use agent_scheduler::config::{Config, Secret};
use fake_sdnext::{FakeConfig, FakeHandle, FakeSdNext};
use scheduler_api::client::{Client, ClientError};
use scheduler_api::{MessageResponse, Task, TaskStatus};
use tokio::sync::oneshot;

use crate::fake_args::FakeArgs;
use crate::harness::wait_until;

/// Deadline for waiting on tasks in the in-process tests.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A host running inside the test process.
pub struct InProcessHost {
    /// Its base URL.
    pub url: String,
    /// The typed client.
    pub api: Client,
    /// Its data folder.
    pub dir: tempfile::TempDir,
    fake: Option<FakeHandle>,
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Result<(), RunError>>,
}

/// Starts an in-process fake SD.Next listing these checkpoints (the first one loaded, 1 ms
/// per step).
pub async fn fake(checkpoints: &[&str]) -> FakeHandle {
    FakeSdNext::start(FakeConfig::with_checkpoints(checkpoints))
        .await
        .expect("the fake SD.Next starts")
}

/// Starts an in-process fake SD.Next configured with the `fake-sdnext` binary's options
/// (`FakeArgs::fast_a()`, or the binary's words), on a free port.
pub async fn fake_with_args(args: impl Into<FakeArgs>) -> FakeHandle {
    FakeSdNext::start(args.into().config())
        .await
        .expect("the fake SD.Next starts")
}

/// Applies `agent-scheduler serve` flags to an in-process host's configuration, as the
/// binary spells them: `--start-paused`, `--token T`, `--allow-origin O`,
/// `--allow-callback-host H`, `--backend URL`, `--max-connections N`,
/// `--header-read-timeout S`, `--webapp DIR`, `--database URL`, `--host-id ID`. Any other
/// word fails the test.
pub fn serve_flags(config: &mut Config, flags: &[&str]) {
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> &str {
            it.next()
                .unwrap_or_else(|| panic!("serve flag {flag} needs a value"))
        };
        match *flag {
            "--start-paused" => config.start_paused = true,
            "--token" => config.token = Some(Secret(value().to_owned())),
            "--allow-origin" => config.allow_origins.push(value().to_owned()),
            "--allow-callback-host" => {
                let v = value();
                config.allow_callback_hosts.push(
                    agent_scheduler::model::callback::AllowedHost::parse(v)
                        .unwrap_or_else(|e| panic!("--allow-callback-host {v}: {e}")),
                );
            }
            "--backend" => config.backends.push(value().to_owned()),
            // At least 1, as the binary reads them.
            "--max-connections" => {
                config.limits.max_connections = value()
                    .parse::<usize>()
                    .expect("--max-connections N")
                    .max(1)
            }
            "--header-read-timeout" => {
                let s = value().parse::<u64>().expect("--header-read-timeout S");
                config.limits.header_read_timeout = Duration::from_secs(s.max(1))
            }
            "--webapp" => config.webapp = Some(value().into()),
            "--database" => {
                config.database = agent_scheduler::config::Database::parse(
                    value(),
                    &std::env::current_dir().expect("the working directory"),
                )
                .unwrap_or_else(|e| panic!("{e}"))
            }
            "--host-id" => config.host_id = Some(value().to_owned()),
            other => panic!("serve flag {other} is not known to inprocess::serve_flags"),
        }
    }
}

impl InProcessHost {
    /// A host on a new data folder driving a new fake with these checkpoints.
    pub async fn start(checkpoints: &[&str]) -> InProcessHost {
        let f = fake(checkpoints).await;
        InProcessHost::start_with(f, tempfile::tempdir().expect("tempdir"), |_| {}).await
    }

    /// A host on a new data folder driving a new fake, both set up with their binaries'
    /// options: `fake_args` as `fake-sdnext` takes them ([`fake_with_args`]), `serve_args` as
    /// `agent-scheduler serve` does ([`serve_flags`]).
    pub async fn start_args(fake_args: impl Into<FakeArgs>, serve_args: &[&str]) -> InProcessHost {
        let f = fake_with_args(fake_args).await;
        InProcessHost::start_with(f, tempfile::tempdir().expect("tempdir"), |c| {
            serve_flags(c, serve_args)
        })
        .await
    }

    /// A host on `dir` driving `fake`, with its configuration edited first.
    pub async fn start_with(
        fake: FakeHandle,
        dir: tempfile::TempDir,
        edit: impl FnOnce(&mut Config),
    ) -> InProcessHost {
        let backend = fake.url();
        let mut h = InProcessHost::start_against(&backend, dir, edit).await;
        h.fake = Some(fake);
        h
    }

    /// A host on `dir` driving the SD.Next at `backend` (a real one, for the live tier).
    pub async fn start_against(
        backend: &str,
        dir: tempfile::TempDir,
        edit: impl FnOnce(&mut Config),
    ) -> InProcessHost {
        let mut config = Config::for_test(backend, dir.path().to_path_buf());
        edit(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(agent_scheduler::run(config, listener, async move {
            let _ = rx.await;
        }));
        InProcessHost {
            api: Client::new(&url),
            url,
            dir,
            fake: None,
            stop: Some(tx),
            join,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("http://127.0.0.1:PORT")
    }

    /// The typed client (the same as [`Self::api`]).
    pub fn client(&self) -> &Client {
        &self.api
    }

    /// The fake SD.Next it drives.
    pub fn fake(&self) -> &FakeHandle {
        self.fake.as_ref().expect("the fake is running")
    }

    /// Stops the fake SD.Next (an outage); [`Self::set_fake`] puts one back.
    pub async fn stop_fake(&mut self) {
        if let Some(f) = self.fake.take() {
            f.stop().await;
        }
    }

    /// The fake SD.Next it drives from now on (one restarted on the same address).
    pub fn set_fake(&mut self, fake: FakeHandle) {
        self.fake = Some(fake);
    }

    /// Waits until task `id` has `status` and returns it.
    pub async fn wait_status(&self, id: &str, status: TaskStatus) -> Task {
        wait_until(&format!("task {id} {status:?}"), DEADLINE, || async {
            self.api.task(id).await.ok().filter(|t| t.status == status)
        })
        .await
    }

    /// Ids of the queue listing, in order (running first).
    pub async fn queue_ids(&self) -> Vec<String> {
        let q = scheduler_api::ListQuery {
            limit: Some(100),
            ..Default::default()
        };
        self.api
            .queue(&q)
            .await
            .expect("GET /queue")
            .pending_tasks
            .into_iter()
            .map(|t| t.id)
            .collect()
    }

    /// Stops the host gracefully (the way it stops on SIGTERM) and returns its data folder
    /// and fake, for a restart.
    pub async fn stop(self) -> (tempfile::TempDir, FakeHandle) {
        let (dir, fake) = self.shut_down().await;
        (dir, fake.expect("the host drove a fake"))
    }

    /// Stops the host gracefully; returns its data folder and its fake, if any.
    pub async fn shut_down(mut self) -> (tempfile::TempDir, Option<FakeHandle>) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.join)
            .await
            .expect("the host stops within 20 s")
            .expect("the host task joins")
            .expect("run() ends without error");
        (self.dir, self.fake.take())
    }
}

/// Asserts that a call was refused with exactly `status` and `message`; returns the error
/// body (its `code` is checked by the caller when it matters).
pub fn refused<T: std::fmt::Debug>(
    r: Result<T, ClientError>,
    status: u16,
    message: &str,
) -> MessageResponse {
    match r {
        Err(ClientError::Refused { status: s, body }) => {
            assert_eq!(
                (s, body.success, body.message.as_str()),
                (status, false, message),
                "refusal"
            );
            body
        }
        other => panic!("expected a {status} refusal `{message}`, got {other:?}"),
    }
}
