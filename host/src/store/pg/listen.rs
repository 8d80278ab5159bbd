//! What the hosts sharing one database tell each other at once: a subscription on a
//! connection of its own (not from the pool: it must stay open and `LISTEN`ing), turned into
//! [`Notice`]s. The tables stay the truth; a notification only says "look now".
//!
//! Channels: [`EVENTS_CHANNEL`] (the payload is the newest event id, sent by
//! `insert_events`), [`WAKE_CHANNEL`] (no payload; sent by the triggers of migration 0002 with
//! every change that may make a task claimable) and [`LIVE_CHANNEL`] (a transient event: JSON
//! `{"o": origin host, "n": name, "d": data}`, or `"r": id` of a `live_events` row when the
//! data is too large for a payload). A host's own live events are skipped here (it broadcast
//! them already; a large one is not even read back).
//!
//! The connection is read whether or not the subscriber keeps up: what waits for it is folded
//! (`Backlog`). It reconnects by itself with a backoff (100 ms doubling up to 5 s); once it
//! listens again it sends [`Notice::Reconnected`]: whatever was sent meanwhile is lost, so
//! the caller replays from its last event id and looks for work. The subscription ends when
//! its receiver is dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Notification};

use super::{EVENTS_CHANNEL, LIVE_CHANNEL, PgResult, PgStore, WAKE_CHANNEL};
use crate::store::StoreError;
use crate::store::api::Notice;

/// The largest payload sent in the notification itself (PostgreSQL's limit is 8000 bytes).
pub const INLINE_MAX: usize = 7900;
/// Notices waiting in the channel for the subscriber (then they wait folded: [`Backlog`]).
const BUFFERED: usize = 64;
/// The first wait before reconnecting, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The `application_name` of a host's listening connection (`pg_stat_activity` shows it).
pub fn listener_name(owner: &str) -> String {
    format!("agent_scheduler listen {owner}")
}

/// A live event's notification payload.
#[derive(Debug, Serialize, Deserialize)]
struct LivePayload {
    /// The host that published it.
    o: String,
    /// The event's name.
    n: String,
    /// Its data, when it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    /// Otherwise the `live_events` row that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<i64>,
}

/// The payload that carries the event itself, when it fits in [`INLINE_MAX`] bytes.
pub(super) fn inline_payload(origin: &str, name: &str, data: &str) -> Option<String> {
    if data.len() > INLINE_MAX {
        return None;
    }
    let p = serde_json::to_string(&LivePayload {
        o: origin.to_owned(),
        n: name.to_owned(),
        d: Some(data.to_owned()),
        r: None,
    })
    .ok()?;
    (p.len() <= INLINE_MAX).then_some(p)
}

/// The payload that names the `live_events` row holding the event.
pub(super) fn row_payload(origin: &str, name: &str, id: i64) -> String {
    serde_json::json!({"o": origin, "n": name, "r": id}).to_string()
}

type Messages = Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// A listening connection: its client (kept: dropping it closes the connection) and its
/// messages.
struct Listening {
    _client: Client,
    messages: Messages,
    /// Notifications that came while the `LISTEN` was answered.
    early: Vec<Notification>,
}

/// Connects on a connection of its own and listens on every channel.
async fn listen(store: &PgStore) -> PgResult<Listening> {
    let mut config = (*store.config).clone();
    config
        .application_name(listener_name(&store.owner))
        .connect_timeout(Duration::from_secs(5))
        // A server gone without a word (a cut network) is noticed within about 25 s.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    let (client, mut conn) = config.connect(store.tls.clone()).await?;
    let mut messages: Messages =
        Box::pin(futures::stream::poll_fn(move |cx| conn.poll_message(cx)));
    let sql = format!("LISTEN {EVENTS_CHANNEL}; LISTEN {WAKE_CHANNEL}; LISTEN {LIVE_CHANNEL}");
    let mut early = Vec::new();
    {
        // The connection is read while the LISTEN is answered (its answer comes through it).
        let answered = client.batch_execute(&sql);
        tokio::pin!(answered);
        loop {
            tokio::select! {
                r = &mut answered => {
                    r?;
                    break;
                }
                m = messages.next() => match m {
                    Some(Ok(AsyncMessage::Notification(n))) => early.push(n),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(closed()),
                },
            }
        }
    }
    Ok(Listening {
        _client: client,
        messages,
        early,
    })
}

fn closed() -> StoreError {
    StoreError::Unavailable("the listening connection closed".into())
}

/// Starts the subscription of `store`'s host: listening when this returns.
pub(super) async fn subscribe(store: PgStore) -> PgResult<mpsc::Receiver<Notice>> {
    let first = listen(&store).await?;
    let (tx, rx) = mpsc::channel(BUFFERED);
    tokio::spawn(run(store, tx, first));
    Ok(rx)
}

/// Notices the subscriber has not taken yet. The connection is read on whatever the
/// subscriber does (a listener that stops reading makes PostgreSQL's notification queue grow
/// until every host's `NOTIFY` fails), so what waits is folded: the newest event id stands
/// for the older ones, one wake-up for many, and only the latest [`LIVE_KEPT`] transient
/// events are kept (older progress is stale anyway).
#[derive(Debug, Default)]
struct Backlog {
    reconnected: bool,
    events: Option<u64>,
    wake: bool,
    live: VecDeque<Notice>,
}

/// Transient events kept for a subscriber that does not keep up.
const LIVE_KEPT: usize = 64;

impl Backlog {
    fn push(&mut self, n: Notice) {
        match n {
            Notice::Reconnected => self.reconnected = true,
            Notice::Events(id) => self.events = Some(self.events.map_or(id, |e| e.max(id))),
            Notice::Wake => self.wake = true,
            live @ Notice::Live { .. } => {
                if self.live.len() == LIVE_KEPT {
                    self.live.pop_front();
                }
                self.live.push_back(live);
            }
        }
    }

    /// The next notice to send: a reconnection first (the caller replays), then the event
    /// log, the wake-up, the transient events in order.
    fn pop(&mut self) -> Option<Notice> {
        if std::mem::take(&mut self.reconnected) {
            return Some(Notice::Reconnected);
        }
        if let Some(id) = self.events.take() {
            return Some(Notice::Events(id));
        }
        if std::mem::take(&mut self.wake) {
            return Some(Notice::Wake);
        }
        self.live.pop_front()
    }

    fn is_empty(&self) -> bool {
        !self.reconnected && self.events.is_none() && !self.wake && self.live.is_empty()
    }
}

/// Reads notifications and sends their notices until the receiver is dropped; reconnects
/// when the connection is lost.
async fn run(store: PgStore, tx: mpsc::Sender<Notice>, first: Listening) {
    let mut current = first;
    let mut backlog = Backlog::default();
    loop {
        for n in std::mem::take(&mut current.early) {
            if let Some(notice) = notice_of(&store, &n).await {
                backlog.push(notice);
            }
        }
        let why = loop {
            tokio::select! {
                biased;
                () = tx.closed() => return,
                // What waits goes first (in order while the subscriber keeps up).
                permit = tx.reserve(), if !backlog.is_empty() => match (permit, backlog.pop()) {
                    (Ok(permit), Some(notice)) => permit.send(notice),
                    (Err(_), _) => return,
                    (Ok(_), None) => {}
                },
                m = current.messages.next() => match m {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if let Some(notice) = notice_of(&store, &n).await {
                            backlog.push(notice);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break StoreError::from(e),
                    None => break closed(),
                },
            }
        };
        tracing::warn!("database notifications lost ({why}); reconnecting");
        drop(current);
        let mut wait = BACKOFF_MIN;
        current = loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match listen(&store).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::debug!("listening again: {e}");
                    wait = (wait * 2).min(BACKOFF_MAX);
                }
            }
        };
        tracing::info!("database notifications: listening again");
        backlog.push(Notice::Reconnected);
    }
}

async fn notice_of(store: &PgStore, n: &Notification) -> Option<Notice> {
    match n.channel() {
        EVENTS_CHANNEL => n.payload().parse().ok().map(Notice::Events),
        WAKE_CHANNEL => Some(Notice::Wake),
        LIVE_CHANNEL => {
            let p: LivePayload = serde_json::from_str(n.payload()).ok()?;
            if p.o == store.owner {
                return None;
            }
            let data = match (p.d, p.r) {
                (Some(d), _) => d,
                (None, Some(id)) => match store.live_row(id).await {
                    Ok(d) => d?,
                    Err(e) => {
                        tracing::debug!("reading live event {id}: {e}");
                        return None;
                    }
                },
                (None, None) => return None,
            };
            Some(Notice::Live {
                name: p.n,
                data,
                origin: p.o,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_events_ride_in_the_payload_and_large_ones_name_a_row() {
        let p = inline_payload("h1", "progress", "{\"a\":\"\\\"x\\\"\"}").unwrap();
        let back: LivePayload = serde_json::from_str(&p).unwrap();
        assert_eq!(
            (back.o.as_str(), back.n.as_str(), back.d.as_deref(), back.r),
            ("h1", "progress", Some("{\"a\":\"\\\"x\\\"\"}"), None)
        );
        assert!(inline_payload("h1", "preview", &"x".repeat(INLINE_MAX)).is_none());
        // Escaping counts: quotes double in size.
        assert!(inline_payload("h1", "preview", &"\"".repeat(INLINE_MAX / 2)).is_none());
        assert!(inline_payload("h1", "preview", &"x".repeat(INLINE_MAX - 64)).is_some());
        let back: LivePayload = serde_json::from_str(&row_payload("h1", "preview", 7)).unwrap();
        assert_eq!((back.d, back.r), (None, Some(7)));
    }

    fn live(i: usize) -> Notice {
        Notice::Live {
            name: "progress".into(),
            data: i.to_string(),
            origin: "h2".into(),
        }
    }

    #[test]
    fn what_a_slow_subscriber_has_not_taken_is_folded() {
        let mut b = Backlog::default();
        assert!(b.is_empty());
        b.push(Notice::Wake);
        b.push(Notice::Events(7));
        b.push(Notice::Events(9));
        b.push(Notice::Events(8));
        b.push(Notice::Wake);
        for i in 0..LIVE_KEPT + 3 {
            b.push(live(i));
        }
        b.push(Notice::Reconnected);
        assert_eq!(b.pop(), Some(Notice::Reconnected));
        assert_eq!(b.pop(), Some(Notice::Events(9)));
        assert_eq!(b.pop(), Some(Notice::Wake));
        // The newest transient events, in order.
        for i in 3..LIVE_KEPT + 3 {
            assert_eq!(b.pop(), Some(live(i)));
        }
        assert_eq!(b.pop(), None);
        assert!(b.is_empty());
    }
}
