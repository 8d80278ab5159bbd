//! `GET /events`: Server-Sent Events with replay after `Last-Event-ID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use scheduler_api::{Event, ResetEvent};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::app::Host;
use crate::store::ops;

fn sse(id: Option<u64>, e: &Event) -> SseEvent {
    let ev = SseEvent::default().event(e.name()).data(e.data_json());
    match id {
        Some(id) => ev.id(id.to_string()),
        None => ev,
    }
}

/// The handler.
pub async fn events(
    State(h): State<Arc<Host>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let rx = h.events.subscribe();
    let mut first: Vec<SseEvent> = Vec::new();
    let mut high = 0u64;
    if let Some(last) = last {
        let r = h
            .store
            .call(move |c| {
                let (oldest, _) = ops::event_bounds(c)?;
                let newest = ops::last_event_id(c)?;
                let rows = ops::events_after(c, last)?;
                Ok((oldest, newest, rows))
            })
            .await;
        match r {
            Ok((oldest, newest, rows)) => {
                let too_old = last > newest
                    || oldest.is_some_and(|o| last + 1 < o)
                    || (oldest.is_none() && last < newest);
                if too_old {
                    first.push(sse(
                        None,
                        &Event::Reset(ResetEvent {
                            oldest: oldest.unwrap_or(newest + 1),
                        }),
                    ));
                    high = newest;
                } else {
                    for (id, name, data) in rows {
                        high = high.max(id);
                        if let Some(e) = Event::from_sse(&name, &data) {
                            first.push(sse(Some(id), &e));
                        }
                    }
                    high = high.max(last);
                }
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
                Some(Ok(sse(p.id, &p.event)))
            }
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                Some(Ok(sse(None, &Event::Reset(ResetEvent { oldest: 0 }))))
            }
        }
    });
    let mut shutdown = h.shutdown.clone();
    let stop = async move {
        let _ = shutdown.wait_for(|v| *v).await;
    };
    let stream = futures::stream::iter(first.into_iter().map(Ok))
        .chain(live)
        .take_until(Box::pin(stop));
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("heartbeat"),
    )
}
