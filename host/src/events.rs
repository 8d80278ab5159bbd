//! The event hub: the live event stream behind `GET /events`.
//!
//! `task` and `queue` events are stored in SQLite (ids from an AUTOINCREMENT counter, so
//! they survive restarts and can be replayed after `Last-Event-ID`); `progress` and
//! `preview` are transient (no id, never replayed). Emitting never blocks the caller: events
//! go through a channel to one writer task that stores them in batches, then broadcasts.

use std::sync::Arc;

use scheduler_api::{Event, TaskChange, TaskEvent, TaskStatus};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::store::SharedStore;

/// An event as broadcast to SSE clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The stored id (`None` for transient events).
    pub id: Option<u64>,
    /// The event.
    pub event: Event,
}

/// Fan-out point of events.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<Published>>,
    writer: mpsc::UnboundedSender<Msg>,
    store: SharedStore,
    /// How many stored events were emitted: a change counter readers can compare.
    changes: Arc<std::sync::atomic::AtomicU64>,
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
        let out = tx.clone();
        let hub = EventHub {
            tx,
            writer,
            store: store.clone(),
            changes: Arc::default(),
        };
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
                    let ids = match store.insert_events(rows, now).await {
                        Ok(ids) => ids.into_iter().map(Some).collect(),
                        Err(e) => {
                            tracing::warn!("storing events: {e}");
                            vec![None; batch.len()]
                        }
                    };
                    for (event, id) in batch.into_iter().zip(ids) {
                        let _ = out.send(Arc::new(Published { id, event }));
                    }
                }
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        });
        hub
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
                let _ = self.tx.send(Arc::new(Published { id: None, event }));
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
