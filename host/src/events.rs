//! The event hub: the live event stream behind `GET /events`.
//!
//! `task` and `queue` events are stored in the store's event log (ids in commit order, so
//! they survive restarts and can be replayed after `Last-Event-ID`); `progress` and
//! `preview` are transient (no id, never replayed). Emitting never blocks the caller: events
//! go through a channel to one writer task that stores them in batches, then broadcasts.
//!
//! Several hosts on one store ([`EventHub::follow`], PostgreSQL): every host broadcasts every
//! host's stored events, in id order from the log, each once: its own batch directly when it
//! follows the last id broadcast, otherwise (other hosts' events came first) the log after
//! the last id broadcast, which a notice of the store also asks for. Transient events are
//! published to the other hosts (and theirs broadcast here); a wake-up notice wakes the
//! workers.

use std::sync::Arc;

use scheduler_api::{Event, TaskChange, TaskEvent, TaskStatus};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::store::SharedStore;
use crate::store::api::Notice;

/// An event as broadcast to SSE clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The stored id (`None` for transient events).
    pub id: Option<u64>,
    /// The event.
    pub event: Event,
    /// Emitted on this host (`false`: another host's, from a shared store).
    pub local: bool,
}

/// What the hub keeps when it follows a shared store.
#[derive(Default)]
struct Shared {
    /// The last stored id broadcast; `None` while the hub does not follow a shared store (its
    /// own events are then all there is, broadcast as they are stored). Held by whoever
    /// broadcasts stored events (the writer across its insert), so they go out in id order.
    last: tokio::sync::Mutex<Option<u64>>,
    /// Where transient events go to the other hosts.
    live: std::sync::OnceLock<mpsc::Sender<Event>>,
}

/// Transient events waiting to be published to the other hosts (more are dropped: a
/// progress or preview is stale by the next one).
const LIVE_WAITING: usize = 64;

/// Fan-out point of events.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<Published>>,
    writer: mpsc::UnboundedSender<Msg>,
    store: SharedStore,
    /// How many stored events were emitted: a change counter readers can compare.
    changes: Arc<std::sync::atomic::AtomicU64>,
    shared: Arc<Shared>,
}

/// What a client that missed events after an id gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The stored events after the id, oldest first (`high`: the highest id covered).
    Events {
        /// `(id, event)` pairs.
        events: Vec<(u64, Event)>,
        /// Live events up to this id are already covered.
        high: u64,
    },
    /// The id is too old (or unknown): the client must reload; `oldest` is the first id kept.
    Reset {
        /// The oldest stored id.
        oldest: u64,
        /// Live events up to this id are already covered.
        high: u64,
    },
}

/// What the writer task receives.
enum Msg {
    /// An event to store and broadcast.
    Event(Event),
    /// Answered once everything sent before it is stored.
    Flush(oneshot::Sender<()>),
}

impl EventHub {
    /// Starts the writer task; events are stored with `clock`'s time.
    pub fn start(store: SharedStore, clock: Clock) -> EventHub {
        let (tx, _) = broadcast::channel(1024);
        let (writer, mut rx) = mpsc::unbounded_channel::<Msg>();
        let hub = EventHub {
            tx,
            writer,
            store: store.clone(),
            changes: Arc::default(),
            shared: Arc::default(),
        };
        let this = hub.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = Vec::new();
                let mut acks = Vec::new();
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Event(e) => batch.push(e),
                        Msg::Flush(ack) => acks.push(ack),
                    }
                    if batch.len() < 200 {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let rows: Vec<(String, String)> = batch
                        .iter()
                        .map(|e| (e.name().to_owned(), e.data_json()))
                        .collect();
                    let now = clock.now_ms();
                    let mut last = this.shared.last.lock().await;
                    match (store.insert_events(rows, now).await, last.as_mut()) {
                        (Ok(ids), Some(last)) => this.broadcast_in_order(last, batch, ids).await,
                        (Ok(ids), None) => {
                            for (event, id) in batch.into_iter().zip(ids) {
                                this.send(Some(id), event, true);
                            }
                        }
                        (Err(e), _) => {
                            tracing::warn!("storing events: {e}");
                            for event in batch {
                                this.send(None, event, true);
                            }
                        }
                    }
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        });
        hub
    }

    fn send(&self, id: Option<u64>, event: Event, local: bool) {
        let _ = self.tx.send(Arc::new(Published { id, event, local }));
    }

    /// Broadcasts this host's batch `batch`, stored as `ids`, after `last` in id order: at
    /// once when it follows `last`, else after the other hosts' events before it, from the
    /// log.
    async fn broadcast_in_order(&self, last: &mut u64, batch: Vec<Event>, ids: Vec<u64>) {
        let (Some(&first), Some(&high)) = (ids.first(), ids.last()) else {
            return;
        };
        let mut mine: std::collections::BTreeMap<u64, Event> = ids.into_iter().zip(batch).collect();
        if first != *last + 1 {
            self.catch_up(last, Some(high), &mut mine).await;
        }
        // Ours directly (all of them, or what the log could not give after an error).
        for (id, event) in mine {
            if id > *last {
                self.send(Some(id), event, true);
                *last = id;
            }
        }
    }

    /// Broadcasts the log after `last` (up to `until`, or its end), each event once; the
    /// events of `mine` are this host's (taken from it).
    async fn catch_up(
        &self,
        last: &mut u64,
        until: Option<u64>,
        mine: &mut std::collections::BTreeMap<u64, Event>,
    ) {
        loop {
            if until.is_some_and(|u| *last >= u) {
                return;
            }
            let rows = match self.store.events_after(*last).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("reading the event log: {e}");
                    return;
                }
            };
            if rows.is_empty() {
                return;
            }
            for (id, name, data) in rows {
                if let Some(event) = mine.remove(&id) {
                    self.send(Some(id), event, true);
                } else if let Some(event) = Event::from_sse(&name, &data) {
                    self.changes
                        .fetch_add(1, std::sync::atomic::Ordering::Release);
                    self.send(Some(id), event, false);
                }
                *last = (*last).max(id);
            }
        }
    }

    /// Broadcasts what the other hosts stored after the last id broadcast (up to `until`).
    async fn catch_up_to(&self, until: Option<u64>) {
        let mut guard = self.shared.last.lock().await;
        if let Some(last) = guard.as_mut() {
            self.catch_up(last, until, &mut Default::default()).await;
        }
    }

    /// Follows a shared store's notices (its [`crate::store::api::TaskStore::subscribe`])
    /// until shutdown: other hosts' stored events are broadcast in id order with this host's,
    /// their transient events too, this host's transient events are published to them, and
    /// `wake` is called when a task may have become claimable (and after a reconnection).
    pub async fn follow(
        &self,
        mut notices: mpsc::Receiver<Notice>,
        wake: impl Fn() + Send + 'static,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), crate::store::StoreError> {
        // Listening already: whatever is stored after this is told.
        let newest = self.store.replay(i64::MAX as u64).await?.newest;
        {
            let mut last = self.shared.last.lock().await;
            if last.is_none() {
                *last = Some(newest);
            }
        }
        let (live_tx, mut live_rx) = mpsc::channel::<Event>(LIVE_WAITING);
        let _ = self.shared.live.set(live_tx);
        let store = self.store.clone();
        tokio::spawn(async move {
            while let Some(e) = live_rx.recv().await {
                if let Err(err) = store.publish_live(e.name().to_owned(), e.data_json()).await {
                    tracing::debug!("publishing a {} event: {err}", e.name());
                }
            }
        });
        let hub = self.clone();
        tokio::spawn(async move {
            // A notice read ahead while gathering the newest id of a run of `Events`.
            let mut ahead: Option<Notice> = None;
            loop {
                let notice = match ahead.take() {
                    Some(n) => Some(n),
                    None => tokio::select! {
                        n = notices.recv() => n,
                        _ = shutdown.wait_for(|v| *v) => None,
                    },
                };
                match notice {
                    None => return,
                    Some(Notice::Events(id)) => {
                        // Notices that came meanwhile are read in the same catch-up: one read
                        // of the log for a busy pool's many events, not one per notice.
                        let mut newest = id;
                        while let Ok(n) = notices.try_recv() {
                            match n {
                                Notice::Events(more) => newest = newest.max(more),
                                other => {
                                    ahead = Some(other);
                                    break;
                                }
                            }
                        }
                        hub.catch_up_to(Some(newest)).await
                    }
                    Some(Notice::Reconnected) => {
                        hub.catch_up_to(None).await;
                        wake();
                    }
                    Some(Notice::Wake) => wake(),
                    Some(Notice::Live { name, data, .. }) => {
                        if let Some(event) = Event::from_sse(&name, &data) {
                            hub.send(None, event, false);
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// The stored events after `last` (for `Last-Event-ID`), or a reset when they are gone.
    pub async fn replay(&self, last: u64) -> Result<Replay, crate::store::StoreError> {
        let crate::store::api::Replay {
            oldest,
            newest,
            rows,
        } = self.store.replay(last).await?;
        let too_old = last > newest
            || oldest.is_some_and(|o| last + 1 < o)
            || (oldest.is_none() && last < newest);
        if too_old {
            return Ok(Replay::Reset {
                oldest: oldest.unwrap_or(newest + 1),
                high: newest,
            });
        }
        let mut high = last;
        let mut events = Vec::with_capacity(rows.len());
        for (id, name, data) in rows {
            high = high.max(id);
            if let Some(e) = Event::from_sse(&name, &data) {
                events.push((id, e));
            }
        }
        Ok(Replay::Events { events, high })
    }

    /// Waits until every event emitted before this call is stored (so an answer sent after
    /// it never describes a change whose event could be lost in a crash of the process; the
    /// event log is a light commit on SQLite, see [`crate::store::Store::call_light`]).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.writer.send(Msg::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Emits an event (stored and replayable unless it is `progress` or `preview`).
    pub fn emit(&self, event: Event) {
        match event {
            Event::Progress(_) | Event::Preview(_) => {
                if let Some(live) = self.shared.live.get() {
                    let _ = live.try_send(event.clone());
                }
                self.send(None, event, true);
            }
            _ => {
                self.changes
                    .fetch_add(1, std::sync::atomic::Ordering::Release);
                let _ = self.writer.send(Msg::Event(event));
            }
        }
    }

    /// A counter of the changes events were emitted for (each is emitted after its change
    /// is written): an answer computed after reading `version()` is current while it stays.
    pub fn version(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Emits a `task` event.
    pub fn task(&self, id: &str, status: TaskStatus, change: TaskChange, name: Option<String>) {
        self.emit(Event::Task(TaskEvent {
            task_id: id.to_owned(),
            status,
            change,
            name,
        }));
    }

    /// A receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use scheduler_api::ProgressEvent;

    use super::*;
    use crate::store::Store;

    fn created(id: &str) -> Event {
        Event::Task(TaskEvent {
            task_id: id.to_owned(),
            status: TaskStatus::Pending,
            change: TaskChange::Created,
            name: None,
        })
    }

    /// Another host stores an event (it tells nobody: the test sends its notice or not).
    async fn stored_elsewhere(store: &SharedStore, id: &str) -> u64 {
        let e = created(id);
        store
            .insert_events(vec![(e.name().to_owned(), e.data_json())], 0)
            .await
            .unwrap()[0]
    }

    async fn next(rx: &mut broadcast::Receiver<Arc<Published>>) -> (Option<u64>, Event, bool) {
        let p = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        (p.id, p.event.clone(), p.local)
    }

    #[tokio::test]
    async fn a_hub_following_a_shared_log_broadcasts_every_hosts_events_once_in_id_order() {
        let store: SharedStore = Arc::new(Store::open_in_memory().unwrap());
        let hub = EventHub::start(store.clone(), Clock::system());
        let (notify, notices) = mpsc::channel(16);
        let (woke, mut wakes) = mpsc::unbounded_channel();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        hub.follow(
            notices,
            move || {
                let _ = woke.send(());
            },
            shutdown,
        )
        .await
        .unwrap();
        let mut rx = hub.subscribe();
        let before = hub.version();
        // Another host's event came first: this host's own follows it, from the log.
        let o1 = stored_elsewhere(&store, "o1").await;
        hub.emit(created("m1"));
        hub.flush().await;
        assert_eq!(next(&mut rx).await, (Some(o1), created("o1"), false));
        assert_eq!(next(&mut rx).await, (Some(o1 + 1), created("m1"), true));
        // Its notice comes late: nothing again.
        notify.send(Notice::Events(o1)).await.unwrap();
        // Two more, told by one notice; then this host's own, directly.
        let o2 = stored_elsewhere(&store, "o2").await;
        let o3 = stored_elsewhere(&store, "o3").await;
        notify.send(Notice::Events(o3)).await.unwrap();
        assert_eq!(next(&mut rx).await, (Some(o2), created("o2"), false));
        assert_eq!(next(&mut rx).await, (Some(o3), created("o3"), false));
        hub.emit(created("m2"));
        hub.flush().await;
        assert_eq!(next(&mut rx).await, (Some(o3 + 1), created("m2"), true));
        // Another host's progress is relayed; a wake-up wakes.
        let p = Event::Progress(ProgressEvent {
            task_id: "o1".into(),
            progress: 0.5,
            eta_s: None,
            step: 1,
            steps: 2,
        });
        notify
            .send(Notice::Live {
                name: p.name().into(),
                data: p.data_json(),
                origin: "h2".into(),
            })
            .await
            .unwrap();
        assert_eq!(next(&mut rx).await, (None, p, false));
        notify.send(Notice::Wake).await.unwrap();
        wakes.recv().await.unwrap();
        // After a reconnection what was missed is read, and the workers look again.
        let o4 = stored_elsewhere(&store, "o4").await;
        notify.send(Notice::Reconnected).await.unwrap();
        assert_eq!(next(&mut rx).await, (Some(o4), created("o4"), false));
        wakes.recv().await.unwrap();
        assert!(rx.try_recv().is_err(), "nothing twice");
        // Every stored event counts as a change, whichever host stored it.
        assert_eq!(hub.version() - before, 6);
    }
}
