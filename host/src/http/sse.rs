//! `GET /events`: Server-Sent Events with replay after `Last-Event-ID`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::StreamExt;
use scheduler_api::{Event, ResetEvent};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use tokio::sync::watch;

use crate::events::{EventHub, Replay};

fn sse(id: Option<u64>, e: &Event) -> SseEvent {
    let ev = SseEvent::default().event(e.name()).data(e.data_json());
    match id {
        Some(id) => ev.id(id.to_string()),
        None => ev,
    }
}

/// Server-Sent Events: `task`, `progress`, `preview`, `queue`, `reset`; `Last-Event-ID`
/// replays what was missed (or sends `reset` when it is too old), else a `: connected`
/// comment at once; a heartbeat every 15 s.
#[utoipa::path(get, path = scheduler_api::routes::EVENTS, tag = "events", operation_id = "get_events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Replay the stored events after this id.")),
    responses((status = 200, description = "The endless event stream.", content_type = "text/event-stream", body = String)))]
pub async fn events(
    State(hub): State<EventHub>,
    State(shutdown): State<watch::Receiver<bool>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let rx = hub.subscribe();
    let mut first: Vec<SseEvent> = Vec::new();
    let mut high = 0u64;
    if let Some(last) = last {
        match hub.replay(last).await {
            Ok(Replay::Reset { oldest, high: h }) => {
                first.push(sse(None, &Event::Reset(ResetEvent { oldest })));
                high = h;
            }
            Ok(Replay::Events { events, high: h }) => {
                first.extend(events.iter().map(|(id, e)| sse(Some(*id), e)));
                high = h;
            }
            Err(e) => tracing::warn!("event replay: {e}"),
        }
    }
    let live = BroadcastStream::new(rx).filter_map(move |item| async move {
        match item {
            Ok(p) => {
                if p.id.is_some_and(|id| id <= high) {
                    return None;
                }
                Some(Ok::<_, Infallible>(sse(p.id, &p.event)))
            }
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                Some(Ok(sse(None, &Event::Reset(ResetEvent { oldest: 0 }))))
            }
        }
    });
    let mut shutdown = shutdown.clone();
    let stop = async move {
        let _ = shutdown.wait_for(|v| *v).await;
    };
    // Something at once: the replayed events, or else a comment, so the answer's head and
    // first bytes leave now and a client knows it is connected without waiting up to 15 s
    // for the first heartbeat or event (Firefox's `fetch` resolves only with the first bytes).
    if first.is_empty() {
        first.push(SseEvent::default().comment("connected"));
    }
    let stream = futures::stream::iter(first.into_iter().map(Ok))
        .chain(live)
        .take_until(Box::pin(stop));
    // `no-store`, not axum's `no-cache`: Firefox keeps a response it may store in its HTTP
    // cache while it streams, and holds a second request for the same URL (the panel's
    // stream beside the worker's) until a cache-lock timeout, about 20 s.
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("heartbeat"),
        ),
    )
}
