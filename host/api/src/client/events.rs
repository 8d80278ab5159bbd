//! The host's event stream (`GET /events`) as typed [`Event`]s, reconnecting with
//! `Last-Event-ID` when the connection drops: the one stream reader of the project (the
//! command line's `watch`, the extension's service worker and panel, the tests).

use std::collections::VecDeque;

use super::transport::{ByteStream, Method};
use super::{Client, ClientError, SseParser};
use crate::Event;

/// What [`EventStream::next`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// The stream is (re)connected. Events missed while disconnected are replayed after it
    /// when the host still has them; otherwise an [`Event::Reset`] follows: reload the lists.
    Opened,
    /// One event, with its id (`None` for events that are never replayed: previews, resets).
    Event {
        /// The SSE id (what `Last-Event-ID` carries on reconnect).
        id: Option<u64>,
        /// The event.
        event: Event,
    },
    /// The host's keep-alive comment (every 15 s while nothing else happens): the
    /// connection is alive. A reader that must stop on some condition can check it here.
    Heartbeat,
    /// The connection failed or ended; the stream reconnects after a backoff (1 s doubling to
    /// 15 s, back to 1 s once events flow) unless reconnecting is off.
    Lost(ClientError),
}

/// A reconnecting reader of `GET /events`; make one with [`Client::events`].
pub struct EventStream {
    client: Client,
    last_id: Option<u64>,
    body: Option<Box<dyn ByteStream>>,
    parser: SseParser,
    pending: VecDeque<StreamItem>,
    reconnect: bool,
    wait_first: bool,
    finished: bool,
    backoff_ms: u32,
    min_backoff_ms: u32,
    max_backoff_ms: u32,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("base", &self.client.base())
            .field("last_id", &self.last_id)
            .field("connected", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(super) fn new(client: Client, last_id: Option<u64>) -> EventStream {
        EventStream {
            client,
            last_id,
            body: None,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            reconnect: true,
            wait_first: false,
            finished: false,
            backoff_ms: 1000,
            min_backoff_ms: 1000,
            max_backoff_ms: 15_000,
        }
    }

    /// Whether to reconnect after a failure (default on). Off, [`Self::next`] yields one
    /// [`StreamItem::Lost`] and then `None`.
    pub fn reconnect(mut self, on: bool) -> EventStream {
        self.reconnect = on;
        self
    }

    /// The reconnect backoff: starts at `min_ms`, doubles up to `max_ms`.
    pub fn backoff(mut self, min_ms: u32, max_ms: u32) -> EventStream {
        self.min_backoff_ms = min_ms.max(1);
        self.max_backoff_ms = max_ms.max(self.min_backoff_ms);
        self.backoff_ms = self.min_backoff_ms;
        self
    }

    /// The id of the last event received (sent as `Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_id
    }

    /// Whether the stream is connected now.
    pub fn is_connected(&self) -> bool {
        self.body.is_some()
    }

    /// The next item; `None` only after a failure when reconnecting is off. Dropping the
    /// future between chunks loses nothing.
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.wait_first {
                    self.client.transport().sleep(self.backoff_ms).await;
                    self.backoff_ms = (self.backoff_ms.saturating_mul(2)).min(self.max_backoff_ms);
                    self.wait_first = false;
                }
                match self.connect().await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.parser = SseParser::new();
                        return Some(StreamItem::Opened);
                    }
                    Err(e) => return Some(self.lost(e)),
                }
            };
            match body.next_chunk().await {
                Ok(Some(chunk)) => {
                    self.backoff_ms = self.min_backoff_ms;
                    let comments = self.parser.comments();
                    let messages = self.parser.feed_bytes(&chunk);
                    if messages.is_empty() && self.parser.comments() > comments {
                        self.pending.push_back(StreamItem::Heartbeat);
                    }
                    for m in messages {
                        let id = m.id.as_deref().and_then(|i| i.trim().parse::<u64>().ok());
                        if id.is_some() {
                            self.last_id = id;
                        }
                        if let Some(event) = Event::from_sse(&m.event, &m.data) {
                            // An id is carried over to later messages by the SSE rules; only
                            // the message that set it owns it.
                            let id = if m.own_id { id } else { None };
                            self.pending.push_back(StreamItem::Event { id, event });
                        }
                    }
                }
                Ok(None) => {
                    self.body = None;
                    return Some(self.lost(ClientError::StreamEnded));
                }
                Err(e) => {
                    self.body = None;
                    return Some(self.lost(e));
                }
            }
        }
    }

    fn lost(&mut self, e: ClientError) -> StreamItem {
        self.wait_first = true;
        if !self.reconnect {
            self.finished = true;
        }
        StreamItem::Lost(e)
    }

    async fn connect(&self) -> Result<Box<dyn ByteStream>, ClientError> {
        let mut req = self
            .client
            .request(Method::Get, crate::routes::EVENTS)
            .header("Accept", "text/event-stream");
        if let Some(id) = self.last_id {
            req = req.header("Last-Event-ID", &id.to_string());
        }
        let resp = self.client.transport().open(req.build()).await?;
        if !(200..300).contains(&resp.status) {
            let status = resp.status;
            let whole = resp.collect().await?;
            return Err(ClientError::refused(status, &whole.body));
        }
        Ok(resp.body)
    }
}
