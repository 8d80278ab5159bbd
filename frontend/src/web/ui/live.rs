//! Live state shared by the panel and the popup: the queue model, the history page, the
//! connection, toasts; fed by `/queue`, `/history` and the host's event stream (reconnects
//! with `Last-Event-ID`; every (re)connect and every `reset` reloads the lists).

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use scheduler_api::client::{ClientError, StreamItem};
use scheduler_api::{
    BackendInfo, EtaResponse, Event, HistoryQuery, HistoryResponse, ListQuery, MessageResponse,
    QueueResponse, Task,
};
use yew::prelude::*;

pub use super::notify::spawn;
use crate::state::ExtOptions;
use crate::state::{MoveTarget, QueueModel};
use crate::web::host::{Host, Platform, error_text};
use crate::web::{chrome, util};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Connection to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    /// Not known yet.
    Connecting,
    /// The event stream is open.
    Online,
    /// Not reachable (with the reason).
    Offline(String),
    /// The host wants a (different) bearer token.
    Unauthorized,
}

impl Conn {
    /// From a failed call: 401 means the token is missing or wrong.
    pub fn from_error(e: &ClientError) -> Conn {
        if e.status() == Some(401) {
            Conn::Unauthorized
        } else {
            Conn::Offline(error_text(e))
        }
    }

    /// The `data-conn` word.
    pub fn word(&self) -> &'static str {
        match self {
            Conn::Online => "online",
            Conn::Connecting => "connecting",
            Conn::Offline(_) => "offline",
            Conn::Unauthorized => "unauthorized",
        }
    }
}

/// Everything the panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    /// The queue: running tasks, the pending page, progress, pause and hold.
    pub q: QueueModel,
    /// The history rows loaded so far (pages appended as the list scrolls).
    pub hist: Rc<Vec<Task>>,
    /// How many finished tasks the history's filter matches.
    pub hist_total: i64,
    /// Where the next history page starts (keyset cursor), if there is one.
    pub hist_next: Option<String>,
    /// The queue's expected starts and end (`GET /queue/eta`).
    pub eta: Option<Rc<EtaResponse>>,
    /// The pool's backends.
    pub backends: Rc<Vec<BackendInfo>>,
    /// Bumped when the queue must be fetched again.
    pub q_gen: u32,
    /// Bumped when the history must be fetched again.
    pub h_gen: u32,
    /// The connection to the host.
    pub conn: Conn,
    /// The toasts shown: (id, text, is an error), oldest first, at most 5.
    pub toasts: Vec<(u32, String, bool)>,
    /// The id of the last toast.
    pub next_toast: u32,
    /// Events applied so far (the test hooks read it).
    pub events_seen: u32,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            q: QueueModel::default(),
            hist: Rc::new(vec![]),
            hist_total: 0,
            hist_next: None,
            eta: None,
            backends: Rc::new(vec![]),
            q_gen: 0,
            h_gen: 0,
            conn: Conn::Connecting,
            toasts: vec![],
            next_toast: 0,
            events_seen: 0,
        }
    }
}

/// What can happen to the live state.
pub enum Action {
    /// A fresh `/queue` page.
    Queue(QueueResponse),
    /// The next `/queue` page (appended).
    QueueMore(QueueResponse),
    /// A fresh `/queue/eta`.
    Eta(EtaResponse),
    /// A fresh `/backends`.
    Backends(Vec<BackendInfo>),
    /// A `/history` page: the first one, or the next one appended.
    History {
        /// The page.
        resp: HistoryResponse,
        /// Whether it follows the rows already loaded.
        append: bool,
    },
    /// An event from the host's stream.
    Event(Event),
    /// A task moved here before the host confirms it (the list answers at once).
    Move(String, MoveTarget),
    /// The connection changed.
    Conn(Conn),
    /// Show a toast (text, is an error).
    Toast(String, bool),
    /// Drop the oldest toast (they leave after a while).
    DropOldestToast,
    /// Fetch the queue again.
    ReloadQueue,
    /// Fetch the history again.
    ReloadHistory,
    /// Fetch both again.
    ReloadAll,
}

impl Reducible for LiveState {
    type Action = Action;
    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Queue(r) => s.q.set_queue(r),
            Action::QueueMore(r) => s.q.append_pending(r),
            Action::Eta(e) => s.eta = Some(Rc::new(e)),
            Action::Backends(b) => s.backends = Rc::new(b),
            Action::History { resp, append } => {
                let mut v = if append { (*s.hist).clone() } else { vec![] };
                v.extend(resp.tasks);
                s.hist = Rc::new(v);
                s.hist_total = resp.total;
                s.hist_next = resp.next_cursor;
            }
            Action::Event(ev) => {
                s.events_seen += 1;
                let r = s.q.apply(&ev);
                if r.queue {
                    s.q_gen += 1;
                }
                if r.history {
                    s.h_gen += 1;
                }
            }
            Action::Move(id, t) => s.q.apply_move(&id, &t),
            Action::Conn(c) => s.conn = c,
            Action::Toast(t, err) => {
                s.next_toast += 1;
                s.toasts.push((s.next_toast, t, err));
                if s.toasts.len() > 5 {
                    s.toasts.remove(0);
                }
            }
            Action::DropOldestToast => {
                if !s.toasts.is_empty() {
                    s.toasts.remove(0);
                }
            }
            Action::ReloadQueue => s.q_gen += 1,
            Action::ReloadHistory => s.h_gen += 1,
            Action::ReloadAll => {
                s.q_gen += 1;
                s.h_gen += 1;
            }
        }
        Rc::new(s)
    }
}

/// Runs a host call and toasts its outcome (the host's message, or the error); reloads the
/// lists afterwards.
pub fn act<F>(d: &UseReducerDispatcher<LiveState>, call: F)
where
    F: Future<Output = Result<MessageResponse, ClientError>> + 'static,
{
    act_boxed(d.clone(), Box::pin(call));
}

/// The body of [`act`], compiled once (not once per call site).
fn act_boxed(
    d: UseReducerDispatcher<LiveState>,
    call: std::pin::Pin<Box<dyn Future<Output = Result<MessageResponse, ClientError>>>>,
) {
    spawn(async move {
        match call.await {
            Ok(m) => push_toast(&d, m.message, false),
            Err(e) => push_toast(&d, error_text(&e), true),
        }
        d.dispatch(Action::ReloadAll);
    });
}

/// A click handler that pauses a running queue or resumes a paused one.
pub fn toggle_pause(
    host: &Host,
    d: &UseReducerDispatcher<LiveState>,
    paused: bool,
) -> Callback<MouseEvent> {
    let (host, d) = (host.clone(), d.clone());
    Callback::from(move |_| {
        let api = host.api();
        act(&d, async move {
            if paused {
                api.resume().await
            } else {
                api.pause().await
            }
        });
    })
}

/// Adds a toast and removes it after 3.5 s.
pub fn push_toast(d: &UseReducerDispatcher<LiveState>, text: impl Into<String>, err: bool) {
    d.dispatch(Action::Toast(text.into(), err));
    let d = d.clone();
    spawn(async move {
        util::sleep_ms(3500).await;
        d.dispatch(Action::DropOldestToast);
    });
}

/// The host: in the extension, from the stored options (followed while open); in the web
/// app, the page's origin with the session's token (the login form sets a new one).
#[hook]
pub fn use_host(platform: Platform) -> UseStateHandle<Option<Host>> {
    let host = use_state(|| (platform == Platform::Web).then(Host::web));
    {
        let host = host.clone();
        use_effect_with((), move |_| {
            if platform == Platform::Web {
                return;
            }
            let h2 = host.clone();
            spawn(async move {
                h2.set(Some(Host::load().await));
            });
            // Follow option changes (host URL, token) while open.
            let cb =
                Closure::<dyn FnMut(JsValue, JsValue)>::new(move |changes: JsValue, _: JsValue| {
                    let ch = chrome::from_js(&changes);
                    if let Some(new) = ch.pointer("/options/newValue") {
                        let next = Host::from_options(&ExtOptions::from_json(new));
                        if host.as_ref() != Some(&next) {
                            host.set(Some(next));
                        }
                    }
                });
            chrome::storage_on_changed_add_listener(cb.as_ref().unchecked_ref());
            cb.forget();
        });
    }
    host
}

/// The history page the panel shows: its filter and sort, page size and search.
pub type HistView = (HistoryQuery, ListQuery);

/// What [`use_live`] loads besides the event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Wants {
    /// `/queue` page size.
    pub queue_limit: i64,
    /// The history page, if shown.
    pub history: Option<HistView>,
    /// Whether to load `/queue/eta` (after each queue reload and every 30 s).
    pub eta: bool,
}

/// The live state: fetches `/queue` (and what `wants` asks for) and holds the event stream
/// while mounted.
#[hook]
pub fn use_live(host: Option<Host>, wants: Wants) -> UseReducerHandle<LiveState> {
    let state = use_reducer(LiveState::default);
    // Event stream (reconnects by itself; every (re)connect reloads the lists).
    {
        let d = state.dispatcher();
        use_effect_with(host.clone(), move |host| {
            let alive = Rc::new(Cell::new(true));
            if let Some(host) = host.clone() {
                let alive = alive.clone();
                spawn(async move {
                    let mut stream = host.api().events(None).backoff(500, 8000);
                    while alive.get() {
                        let Some(item) = stream.next().await else {
                            break;
                        };
                        if !alive.get() {
                            break;
                        }
                        match item {
                            StreamItem::Opened => {
                                d.dispatch(Action::Conn(Conn::Online));
                                d.dispatch(Action::ReloadAll);
                            }
                            StreamItem::Event { event, .. } => d.dispatch(Action::Event(event)),
                            StreamItem::Heartbeat => {}
                            StreamItem::Lost(ClientError::StreamEnded) => {
                                d.dispatch(Action::Conn(Conn::Connecting))
                            }
                            StreamItem::Lost(e) => d.dispatch(Action::Conn(Conn::from_error(&e))),
                        }
                    }
                });
            }
            move || alive.set(false)
        });
    }
    // Queue (first page; more pages are appended by the list as it scrolls), then the ETA.
    {
        let d = state.dispatcher();
        let (limit, eta) = (wants.queue_limit, wants.eta);
        let loaded = state.q.pending.len() as i64;
        use_effect_with((host.clone(), state.q_gen), move |(host, _)| {
            if let Some(host) = host.clone() {
                spawn(async move {
                    let q = ListQuery {
                        limit: Some(loaded.clamp(limit, limit.max(1000))),
                        ..ListQuery::default()
                    };
                    match host.api().queue(&q).await {
                        Ok(r) => d.dispatch(Action::Queue(r)),
                        Err(e) => d.dispatch(Action::Conn(Conn::from_error(&e))),
                    }
                    if eta {
                        if let Ok(e) = host.api().eta(Some(limit.max(200))).await {
                            d.dispatch(Action::Eta(e));
                        }
                        if let Ok(b) = host.api().backends().await {
                            d.dispatch(Action::Backends(b));
                        }
                    }
                });
            }
            || ()
        });
    }
    // The ETA moves with time too: every 30 s.
    {
        let d = state.dispatcher();
        let eta = wants.eta;
        use_effect_with((host.clone(), eta), move |(host, eta)| {
            let t = (*eta && host.is_some()).then(|| {
                gloo::timers::callback::Interval::new(30_000, move || {
                    d.dispatch(Action::ReloadQueue)
                })
            });
            move || drop(t)
        });
    }
    // History (first page; more pages are appended by the list as it scrolls).
    {
        let d = state.dispatcher();
        use_effect_with((host, state.h_gen, wants.history), move |(host, _, q)| {
            if let (Some(host), Some((filter, q))) = (host.clone(), q.clone()) {
                spawn(async move {
                    let q = ListQuery {
                        offset: Some(0),
                        ..q
                    };
                    if let Ok(resp) = host.api().history_with(&filter, &q).await {
                        d.dispatch(Action::History {
                            resp,
                            append: false,
                        });
                    }
                });
            }
            || ()
        });
    }
    state
}

/// The toasts area.
#[derive(Properties, PartialEq)]
pub struct ToastsProps {
    /// (id, text, is an error), oldest first.
    pub toasts: Vec<(u32, String, bool)>,
}

/// Renders the toasts.
#[function_component(Toasts)]
pub fn toasts(p: &ToastsProps) -> Html {
    html! {
        <div class="toasts">
            { for p.toasts.iter().map(|(id, t, err)| html! {
                <div key={*id} class={classes!("toast", err.then_some("error"))}>{ t }</div>
            }) }
        </div>
    }
}
