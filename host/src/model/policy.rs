//! The scheduling policy: which pending task a backend runs next ([`pick`]), and the order
//! the queue will run in ([`project`], shown by the listing). One pure function decides both,
//! so what the listing shows is what runs.
//!
//! For the claiming backend (a [`Seat`]), over the look-ahead window (the first pending
//! tasks in queue order, [`Waiting`]):
//! 1. only tasks it can run are eligible: its checkpoint is listed by this backend (or by
//!    none), its retry backoff is over, and, while the queue is paused, it was started with
//!    "run now";
//! 2. "run now" and "move to top" tasks ([`Waiting::urgent`]) go first, in queue order;
//! 3. with grouping off ([`Rules::group_by_checkpoint`]): the first eligible task (FIFO);
//! 4. a task overtaken [`Rules::max_overtakes`] times, or first overtaken
//!    [`Rules::max_wait_ms`] ago, goes first (the starvation bound);
//! 5. otherwise the first task whose checkpoint (and VAE) the backend has loaded;
//! 6. otherwise the first task not kept for another backend: a task whose checkpoint is
//!    loaded on another backend waits for it only while that backend is busy with work of
//!    the same checkpoint (one task per such backend: the one it takes next without a
//!    load); any other task is taken, by any idle backend that lists its checkpoint (a
//!    checkpoint switch). An idle backend keeps nothing: it takes its own work itself.
//!
//! Every eligible task ahead of the one chosen is overtaken once ([`Choice::overtaken`]).
//! With one checkpoint (or grouping off) the order is exactly FIFO.

/// The policy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Group tasks by checkpoint (off: strict FIFO).
    pub group_by_checkpoint: bool,
    /// A task overtaken this many times goes first.
    pub max_overtakes: u32,
    /// A task first overtaken this long ago (ms) goes first.
    pub max_wait_ms: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            group_by_checkpoint: true,
            max_overtakes: 32,
            max_wait_ms: 30 * 60 * 1000,
        }
    }
}

/// A pending task as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waiting {
    /// Its checkpoint, as a key comparable with [`Seat::loaded`] (`None`: whatever is
    /// loaded, never a switch).
    pub checkpoint: Option<String>,
    /// Its VAE (`None`: whatever is set).
    pub vae: Option<String>,
    /// "Run now" or moved to the top: goes before the policy's choices.
    pub urgent: bool,
    /// Runs even while the queue is paused ("run now" while paused).
    pub forced: bool,
    /// How many later tasks ran before it.
    pub overtakes: u32,
    /// When it was first overtaken (ms).
    pub overtaken_at: Option<i64>,
    /// Waiting out a retry backoff until then (ms).
    pub not_before: Option<i64>,
}

impl Waiting {
    fn starved(&self, rules: &Rules, now: i64) -> bool {
        self.overtakes >= rules.max_overtakes
            || self
                .overtaken_at
                .is_some_and(|t| now.saturating_sub(t) >= rules.max_wait_ms)
    }
}

/// What a backend is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Waiting for work.
    Idle,
    /// Running a task of this checkpoint.
    Busy(Option<String>),
    /// Takes no work: down, disabled, draining, stalled or held.
    Away,
}

/// A backend as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The checkpoint key loaded (`None`: none or not known).
    pub loaded: Option<String>,
    /// The VAE set (`None`: not known).
    pub vae: Option<String>,
    /// What it is doing.
    pub activity: Activity,
    /// For each waiting task (same indices): whether this backend can run it.
    pub runs: Vec<bool>,
}

impl Seat {
    /// Whether task `t` runs here without loading a checkpoint or setting a VAE.
    pub fn has_loaded(&self, t: &Waiting) -> bool {
        let ck = match &t.checkpoint {
            None => true,
            Some(k) => self.loaded.as_ref() == Some(k),
        };
        let vae = match &t.vae {
            None => true,
            Some(v) => self.vae.as_ref() == Some(v),
        };
        ck && vae
    }

    fn runs(&self, i: usize) -> bool {
        self.runs.get(i).copied().unwrap_or(true)
    }
}

/// What [`pick`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The index of the task to run.
    pub index: usize,
    /// Indices of the eligible tasks ahead of it (each overtaken once more).
    pub overtaken: Vec<usize>,
}

/// The task seat `me` runs next, or `None` when it has nothing it may run.
pub fn pick(
    tasks: &[Waiting],
    seats: &[Seat],
    me: usize,
    rules: &Rules,
    paused: bool,
    now: i64,
) -> Option<Choice> {
    let seat = seats.get(me)?;
    if seat.activity == Activity::Away {
        return None;
    }
    let eligible = |i: usize| {
        let t = &tasks[i];
        seat.runs(i) && t.not_before.is_none_or(|nb| nb <= now) && (!paused || t.forced)
    };
    let choose = |index: usize| Choice {
        index,
        overtaken: (0..index).filter(|&i| eligible(i)).collect(),
    };
    let mut order = (0..tasks.len()).filter(|&i| eligible(i));
    if let Some(i) = (0..tasks.len()).find(|&i| eligible(i) && tasks[i].urgent) {
        return Some(choose(i));
    }
    if !rules.group_by_checkpoint {
        return order.next().map(choose);
    }
    if let Some(i) = (0..tasks.len()).find(|&i| eligible(i) && tasks[i].starved(rules, now)) {
        return Some(choose(i));
    }
    if let Some(i) = (0..tasks.len()).find(|&i| eligible(i) && seat.has_loaded(&tasks[i])) {
        return Some(choose(i));
    }
    // Each other backend busy with a checkpoint (loaded) keeps the first task of that
    // checkpoint for itself; an idle or away backend keeps nothing.
    let mut reserved_by = vec![false; seats.len()];
    for i in order {
        let t = &tasks[i];
        let keeper = seats.iter().enumerate().position(|(o, s)| {
            o != me
                && !reserved_by[o]
                && s.runs(i)
                && t.checkpoint.is_some()
                && s.has_loaded(t)
                && matches!(&s.activity, Activity::Busy(k) if k == &t.checkpoint)
        });
        match keeper {
            Some(o) => reserved_by[o] = true,
            None => return Some(choose(i)),
        }
    }
    None
}

/// Applies a choice to the waiting tasks' counters (what the store writes with a claim).
pub fn overtake(tasks: &mut [Waiting], choice: &Choice, now: i64) {
    for &i in &choice.overtaken {
        if let Some(t) = tasks.get_mut(i) {
            t.overtakes = t.overtakes.saturating_add(1);
            t.overtaken_at.get_or_insert(now);
        }
    }
}

/// One place of the projected order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The waiting task (index into the window).
    pub index: usize,
    /// The seat expected to run it (`None`: no backend can run it now).
    pub seat: Option<usize>,
    /// Whether that seat loads a checkpoint (or sets a VAE) for it: a switch point.
    pub switch: bool,
}

/// The order the window will run in: the claims of every seat simulated with [`pick`],
/// each seat taking its next task when it is expected to be free (`free_in_ms`: 0 when idle;
/// `ms_per_task`: its measured pace). Tasks no seat can run come last, in queue order.
pub fn project(
    tasks: &[Waiting],
    seats: &[Seat],
    free_in_ms: &[i64],
    ms_per_task: &[i64],
    rules: &Rules,
    now: i64,
) -> Vec<Slot> {
    let mut waiting: Vec<(usize, Waiting)> = tasks.iter().cloned().enumerate().collect();
    let mut sim: Vec<Seat> = seats.to_vec();
    let mut free: Vec<i64> = (0..seats.len())
        .map(|s| free_in_ms.get(s).copied().unwrap_or(0).max(0))
        .collect();
    let mut active: Vec<bool> = sim.iter().map(|s| s.activity != Activity::Away).collect();
    let mut out = Vec::with_capacity(tasks.len());
    while !waiting.is_empty() {
        let Some(me) = (0..sim.len())
            .filter(|&s| active[s])
            .min_by_key(|&s| (free[s], s))
        else {
            break;
        };
        let at = free[me];
        // The window as it stands, with each seat's view of it.
        let view: Vec<Waiting> = waiting.iter().map(|(_, t)| t.clone()).collect();
        let seats_now: Vec<Seat> = sim
            .iter()
            .enumerate()
            .map(|(s, seat)| Seat {
                loaded: seat.loaded.clone(),
                vae: seat.vae.clone(),
                activity: if !active[s] {
                    Activity::Away
                } else if s != me && free[s] > at {
                    seat.activity.clone()
                } else {
                    Activity::Idle
                },
                runs: waiting.iter().map(|&(i, _)| seat.runs(i)).collect(),
            })
            .collect();
        match pick(&view, &seats_now, me, rules, false, now + at) {
            None => {
                // Nothing for it now: try again when the next other seat frees up.
                match (0..sim.len())
                    .filter(|&s| s != me && active[s] && free[s] > at)
                    .map(|s| free[s])
                    .min()
                {
                    Some(next) => free[me] = next,
                    None => active[me] = false,
                }
            }
            Some(choice) => {
                let mut ws: Vec<Waiting> = view;
                overtake(&mut ws, &choice, now + at);
                for ((_, t), w) in waiting.iter_mut().zip(ws) {
                    *t = w;
                }
                let (index, t) = waiting.remove(choice.index);
                let seat = &mut sim[me];
                let switch = !seat.has_loaded(&t);
                if t.checkpoint.is_some() {
                    seat.loaded = t.checkpoint.clone();
                }
                if t.vae.is_some() {
                    seat.vae = t.vae.clone();
                }
                seat.activity = Activity::Busy(t.checkpoint.clone());
                free[me] = at + ms_per_task.get(me).copied().unwrap_or(1).max(1);
                out.push(Slot {
                    index,
                    seat: Some(me),
                    switch,
                });
            }
        }
    }
    out.extend(waiting.into_iter().map(|(index, _)| Slot {
        index,
        seat: None,
        switch: false,
    }));
    out
}

#[cfg(test)]
mod tests;
