//! Waiting for tasks to end, on the event stream (checked against the task itself whenever
//! the stream (re)connects or resets, so nothing is missed).

use std::collections::BTreeMap;

use scheduler_api::client::{Client, EventStream, StreamItem};
use scheduler_api::{Event, Task, TaskChange};

use super::CliError;

/// What became of a task waited for.
#[derive(Debug, Clone)]
pub enum Ended {
    /// It finished (done, failed or interrupted).
    Finished(Box<Task>),
    /// It was deleted.
    Deleted,
}

impl Ended {
    /// Whether it ended done.
    pub fn is_done(&self) -> bool {
        matches!(self, Ended::Finished(t) if t.status == scheduler_api::TaskStatus::Done)
    }
}

/// Opens the event stream and waits until it is connected (so nothing that happens after
/// this returns is missed). An unreachable or refusing host is an error.
pub async fn open(c: &Client) -> Result<EventStream, CliError> {
    let mut s = c.events(None);
    match s.next().await {
        Some(StreamItem::Opened) => Ok(s),
        Some(StreamItem::Lost(e)) => Err(e.into()),
        other => Err(CliError::Io(format!("unexpected stream item {other:?}"))),
    }
}

/// Looks at every id still waited for; ends the finished and deleted ones.
async fn check(
    c: &Client,
    left: &mut Vec<String>,
    ended: &mut BTreeMap<String, Ended>,
) -> Result<(), CliError> {
    for id in left.clone() {
        match c.task(&id).await {
            Ok(t) if t.status.is_finished() => {
                ended.insert(id.clone(), Ended::Finished(Box::new(t)));
            }
            Ok(_) => continue,
            Err(e) if e.status() == Some(404) => {
                ended.insert(id.clone(), Ended::Deleted);
            }
            Err(e) => return Err(e.into()),
        }
        left.retain(|x| *x != id);
    }
    Ok(())
}

/// Waits until every task of `ids` has ended; `on_item` sees every stream item (for
/// printing). `stream` must have been opened before the tasks could end.
pub async fn until_ended(
    c: &Client,
    stream: &mut EventStream,
    ids: &[String],
    mut on_item: impl FnMut(&StreamItem),
) -> Result<BTreeMap<String, Ended>, CliError> {
    let mut left: Vec<String> = ids.to_vec();
    let mut ended = BTreeMap::new();
    check(c, &mut left, &mut ended).await?;
    while !left.is_empty() {
        let Some(item) = stream.next().await else {
            return Err(CliError::Io("the event stream stopped".into()));
        };
        on_item(&item);
        match &item {
            StreamItem::Opened
            | StreamItem::Event {
                event: Event::Reset(_),
                ..
            } => check(c, &mut left, &mut ended).await?,
            StreamItem::Event {
                event: Event::Task(t),
                ..
            } if left.contains(&t.task_id)
                && matches!(t.change, TaskChange::Finished | TaskChange::Deleted) =>
            {
                let id = t.task_id.clone();
                if t.change == TaskChange::Deleted {
                    ended.insert(id.clone(), Ended::Deleted);
                    left.retain(|x| *x != id);
                } else {
                    let mut one = vec![id];
                    check(c, &mut one, &mut ended).await?;
                    let id = t.task_id.clone();
                    if one.is_empty() {
                        left.retain(|x| *x != id);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ended)
}
