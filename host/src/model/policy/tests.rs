//! The policy's properties: every task eventually runs; the starvation bound holds; with one
//! checkpoint (or grouping off) the order is exactly FIFO; the projection is the order the
//! claims take. Plus the rules by example.

use proptest::prelude::*;

use super::*;

const MIN: i64 = 60_000;

fn task(ck: &str) -> Waiting {
    Waiting {
        checkpoint: Some(ck.to_owned()),
        ..Waiting::default()
    }
}

fn seat(loaded: Option<&str>, n: usize) -> Seat {
    Seat {
        loaded: loaded.map(str::to_owned),
        vae: None,
        activity: Activity::Idle,
        runs: vec![true; n],
    }
}

/// One backend draining a queue (no arrivals): the order it runs, counters applied like the
/// store applies them.
fn drain_one(mut queue: Vec<Waiting>, loaded: Option<&str>, rules: &Rules) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..queue.len()).collect();
    let mut s = seat(loaded, queue.len());
    let mut out = Vec::new();
    let mut now = 0;
    while !queue.is_empty() {
        s.runs = vec![true; queue.len()];
        let c = pick(&queue, std::slice::from_ref(&s), 0, rules, false, now).expect("a pick");
        overtake(&mut queue, &c, now);
        let t = queue.remove(c.index);
        if t.checkpoint.is_some() {
            s.loaded = t.checkpoint.clone();
        }
        out.push(ids.remove(c.index));
        now += MIN;
    }
    out
}

#[test]
fn five_prompts_times_three_checkpoints_load_each_checkpoint_once() {
    // The order "Queue with all checkpoints" produces: prompt by prompt.
    let queue: Vec<Waiting> = (0..5).flat_map(|_| ["a", "b", "c"].map(task)).collect();
    let order = drain_one(queue.clone(), Some("a"), &Rules::default());
    let cks: Vec<&str> = order
        .iter()
        .map(|&i| queue[i].checkpoint.as_deref().unwrap())
        .collect();
    assert_eq!(
        cks,
        [
            "a", "a", "a", "a", "a", "b", "b", "b", "b", "b", "c", "c", "c", "c", "c"
        ]
    );
    // Grouping off: strict FIFO.
    let fifo = drain_one(
        queue,
        Some("a"),
        &Rules {
            group_by_checkpoint: false,
            ..Rules::default()
        },
    );
    assert_eq!(fifo, (0..15).collect::<Vec<_>>());
}

#[test]
fn urgent_and_starved_tasks_go_first() {
    let mut q = vec![task("b"), task("a"), task("b"), task("a")];
    let s = [seat(Some("a"), 4)];
    let r = Rules::default();
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 1);
    q[2].urgent = true;
    let c = pick(&q, &s, 0, &r, false, 0).unwrap();
    assert_eq!((c.index, c.overtaken.clone()), (2, vec![0, 1]));
    q[2].urgent = false;
    q[0].overtakes = 32;
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 0);
    q[0].overtakes = 3;
    q[0].overtaken_at = Some(0);
    assert_eq!(pick(&q, &s, 0, &r, false, 29 * MIN).unwrap().index, 1);
    assert_eq!(pick(&q, &s, 0, &r, false, 30 * MIN).unwrap().index, 0);
}

#[test]
fn paused_backoff_and_unlisted_tasks_are_skipped() {
    let mut q = vec![task("a"), task("a"), task("b")];
    let mut s = [seat(Some("a"), 3)];
    let r = Rules::default();
    q[0].not_before = Some(10);
    assert_eq!(pick(&q, &s, 0, &r, false, 5).unwrap().index, 1);
    assert_eq!(pick(&q, &s, 0, &r, false, 10).unwrap().index, 0);
    assert_eq!(pick(&q, &s, 0, &r, true, 10), None, "paused");
    q[2].forced = true;
    q[2].urgent = true;
    assert_eq!(pick(&q, &s, 0, &r, true, 10).unwrap().index, 2);
    s[0].runs = vec![false, false, true];
    let c = pick(&q, &s, 0, &r, false, 10).unwrap();
    assert_eq!(
        (c.index, c.overtaken.len()),
        (2, 0),
        "tasks it cannot run are not overtaken"
    );
    s[0].activity = Activity::Away;
    assert_eq!(pick(&q, &s, 0, &r, false, 10), None);
}

#[test]
fn a_task_waits_for_a_backend_busy_with_its_checkpoint_only() {
    // Backend 1 runs `x` (loaded); backend 0 has `y` loaded, and the queue is x, x, z.
    let q = vec![task("x"), task("x"), task("z")];
    let mut s = vec![seat(Some("y"), 3), seat(Some("x"), 3)];
    s[1].activity = Activity::Busy(Some("x".into()));
    let r = Rules::default();
    // The first x is kept for backend 1; backend 0 takes the second one (no idle capacity
    // is wasted on a long run of x).
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 1);
    // Busy with another checkpoint: nothing is kept for it.
    s[1].activity = Activity::Busy(Some("w".into()));
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 0);
    // Down: its loaded checkpoint keeps nothing.
    s[1].activity = Activity::Away;
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 0);
    // Only one x, backend 1 busy with x: it waits for backend 1, backend 0 has nothing.
    let q = vec![task("x")];
    s[1].activity = Activity::Busy(Some("x".into()));
    assert_eq!(pick(&q, &s, 0, &r, false, 0), None);
    // Backend 1 idle with x loaded: it keeps nothing; either idle backend takes the x.
    s[1].activity = Activity::Idle;
    assert_eq!(pick(&q, &s, 0, &r, false, 0).unwrap().index, 0);
    assert_eq!(pick(&q, &s, 1, &r, false, 0).unwrap().index, 0);
    // Backend 0 does not list x: it never takes it, kept or not.
    let mut s0 = s.clone();
    s0[0].runs = vec![false];
    assert_eq!(pick(&q, &s0, 0, &r, false, 0), None);
}

#[test]
fn the_projection_marks_switch_points_and_spreads_over_seats() {
    let q: Vec<Waiting> = ["a", "b", "a", "b"].map(task).to_vec();
    let one = [seat(Some("a"), 4)];
    let p = project(&q, &one, &[0], &[1000], &Rules::default(), 0);
    let got: Vec<(usize, bool)> = p.iter().map(|s| (s.index, s.switch)).collect();
    assert_eq!(got, [(0, false), (2, false), (1, true), (3, false)]);
    let two = [seat(Some("a"), 4), seat(Some("b"), 4)];
    let p = project(&q, &two, &[0, 0], &[1000, 1000], &Rules::default(), 0);
    let got: Vec<(usize, Option<usize>, bool)> =
        p.iter().map(|s| (s.index, s.seat, s.switch)).collect();
    assert_eq!(
        got,
        [
            (0, Some(0), false),
            (1, Some(1), false),
            (2, Some(0), false),
            (3, Some(1), false)
        ]
    );
    // No seat can run anything: queue order, no seat.
    let mut away = seat(Some("a"), 4);
    away.activity = Activity::Away;
    let p = project(&q, &[away], &[0], &[1000], &Rules::default(), 0);
    assert_eq!(
        p.iter().map(|s| (s.index, s.seat)).collect::<Vec<_>>(),
        [(0, None), (1, None), (2, None), (3, None)]
    );
}

// ---------------------------------------------------------------------------------------
// Properties

fn checkpoints(n: usize) -> impl Strategy<Value = Vec<Option<u8>>> {
    prop::collection::vec(prop::option::weighted(0.9, 0u8..n as u8), 0..60)
}

fn waiting(cks: &[Option<u8>]) -> Vec<Waiting> {
    cks.iter()
        .map(|c| Waiting {
            checkpoint: c.map(|c| format!("ck{c}")),
            ..Waiting::default()
        })
        .collect()
}

/// A queue with arrivals between claims on one backend; returns, for every task, how many
/// tasks that arrived after it ran before it, and the order tasks ran.
fn run_with_arrivals(
    initial: &[Option<u8>],
    arrivals: &[(u8, Vec<Option<u8>>)],
    rules: &Rules,
) -> (Vec<u32>, Vec<usize>) {
    let mut queue: Vec<(usize, Waiting)> = waiting(initial).into_iter().enumerate().collect();
    let mut next_id = queue.len();
    let mut s = seat(Some("ck0"), 0);
    let mut ran: Vec<usize> = Vec::new();
    let mut now = 0;
    let mut arrivals = arrivals.iter();
    loop {
        if let Some((claims, new)) = arrivals.next() {
            for _ in 0..*claims {
                claim_one(&mut queue, &mut s, rules, now, &mut ran);
                now += MIN / 4;
            }
            for t in waiting(new) {
                queue.push((next_id, t));
                next_id += 1;
            }
        } else if queue.is_empty() {
            break;
        } else {
            claim_one(&mut queue, &mut s, rules, now, &mut ran);
            now += MIN / 4;
        }
    }
    let mut overtaken = vec![0u32; next_id];
    for (k, &id) in ran.iter().enumerate() {
        overtaken[id] = ran[..k].iter().filter(|&&before| before > id).count() as u32;
    }
    (overtaken, ran)
}

fn claim_one(
    queue: &mut Vec<(usize, Waiting)>,
    s: &mut Seat,
    rules: &Rules,
    now: i64,
    ran: &mut Vec<usize>,
) {
    if queue.is_empty() {
        return;
    }
    let mut view: Vec<Waiting> = queue.iter().map(|(_, t)| t.clone()).collect();
    s.runs = vec![true; view.len()];
    let c = pick(&view, std::slice::from_ref(s), 0, rules, false, now)
        .expect("one backend that runs everything always picks");
    overtake(&mut view, &c, now);
    for ((_, t), w) in queue.iter_mut().zip(view) {
        *t = w;
    }
    let (id, t) = queue.remove(c.index);
    if t.checkpoint.is_some() {
        s.loaded = t.checkpoint;
    }
    ran.push(id);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With one checkpoint the order is exactly FIFO, whatever is loaded; grouping off is
    /// FIFO for any checkpoints.
    #[test]
    fn one_checkpoint_is_fifo(n in 0usize..80, loaded in prop::option::of(0u8..2), none in any::<bool>()) {
        let ck = if none { None } else { Some("only".to_owned()) };
        let queue: Vec<Waiting> = (0..n).map(|_| Waiting { checkpoint: ck.clone(), ..Waiting::default() }).collect();
        let l = loaded.map(|l| if l == 0 { "only" } else { "other" });
        prop_assert_eq!(drain_one(queue, l, &Rules::default()), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn grouping_off_is_fifo(cks in checkpoints(4)) {
        let rules = Rules { group_by_checkpoint: false, ..Rules::default() };
        let n = cks.len();
        prop_assert_eq!(drain_one(waiting(&cks), Some("ck1"), &rules), (0..n).collect::<Vec<_>>());
    }

    /// Every task runs exactly once, and no task is overtaken by more than `max_overtakes`
    /// later tasks, while tasks keep arriving between claims.
    #[test]
    fn every_task_runs_and_the_overtake_bound_holds(
        initial in checkpoints(4),
        arrivals in prop::collection::vec((0u8..4, checkpoints(3)), 0..12),
        bound in 1u32..40,
    ) {
        let rules = Rules { max_overtakes: bound, max_wait_ms: i64::MAX, ..Rules::default() };
        let (overtaken, ran) = run_with_arrivals(&initial, &arrivals, &rules);
        let mut sorted = ran.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..overtaken.len()).collect::<Vec<_>>());
        for (id, &o) in overtaken.iter().enumerate() {
            prop_assert!(o <= bound, "task {} overtaken {} times (bound {})", id, o, bound);
        }
    }

    /// Whenever a starved task is eligible (overtaken N times, or first overtaken T ago),
    /// the claim takes the first starved task.
    #[test]
    fn a_starved_task_goes_first(
        cks in checkpoints(3),
        counts in prop::collection::vec((0u32..6, prop::option::of(0i64..40)), 60),
        now_min in 0i64..60,
    ) {
        let rules = Rules { max_overtakes: 4, max_wait_ms: 30 * MIN, ..Rules::default() };
        let mut q = waiting(&cks);
        for (t, (o, at)) in q.iter_mut().zip(counts) {
            t.overtakes = o;
            t.overtaken_at = at.map(|m| m * MIN);
        }
        let now = now_min * MIN;
        let s = seat(Some("ck0"), q.len());
        let starved = q.iter().position(|t| t.starved(&rules, now));
        let c = pick(&q, std::slice::from_ref(&s), 0, &rules, false, now);
        match starved {
            Some(i) => prop_assert_eq!(c.map(|c| c.index), Some(i)),
            None => prop_assert!(c.is_none() == q.is_empty()),
        }
    }

    /// Several backends, each listing some checkpoints (every task runnable somewhere), some
    /// busy: claims and run ends in any order never leave work stuck; every task runs once,
    /// on a backend that can run it.
    #[test]
    fn a_pool_never_deadlocks(
        cks in checkpoints(4),
        lists in prop::collection::vec(prop::collection::vec(any::<bool>(), 4), 1..5),
        steps in prop::collection::vec(any::<u16>(), 0..400),
    ) {
        let nseats = lists.len();
        // Make every checkpoint listed by someone.
        let mut lists = lists;
        for k in 0..4 {
            if !lists.iter().any(|l| l[k]) {
                lists[k % nseats][k] = true;
            }
        }
        let mut queue: Vec<(usize, Waiting)> = waiting(&cks).into_iter().enumerate().collect();
        let runs_on = |s: usize, t: &Waiting| match &t.checkpoint {
            None => true,
            Some(c) => lists[s][c[2..].parse::<usize>().unwrap()],
        };
        let mut seats: Vec<Seat> = (0..nseats).map(|s| seat(Some(&format!("ck{s}")), 0)).collect();
        let mut ran = Vec::new();
        let mut steps = steps.into_iter();
        let mut now = 0;
        while !queue.is_empty() {
            now += 1000;
            let step = steps.next().unwrap_or(0) as usize;
            let busy: Vec<usize> = (0..nseats).filter(|&s| matches!(seats[s].activity, Activity::Busy(_))).collect();
            // Either a busy seat finishes, or an idle one claims.
            if step.is_multiple_of(3) && !busy.is_empty() {
                seats[busy[step % busy.len()]].activity = Activity::Idle;
                continue;
            }
            let view: Vec<Waiting> = queue.iter().map(|(_, t)| t.clone()).collect();
            for s in &mut seats {
                s.runs = view.iter().map(|_| true).collect();
            }
            for (s, seat) in seats.iter_mut().enumerate() {
                seat.runs = view.iter().map(|t| runs_on(s, t)).collect();
            }
            let idle: Vec<usize> = (0..nseats).filter(|&s| seats[s].activity == Activity::Idle).collect();
            let order: Vec<usize> = idle.iter().cycle().skip(step).take(idle.len()).copied().collect();
            let mut claimed = false;
            for s in order {
                if let Some(c) = pick(&view, &seats, s, &Rules::default(), false, now) {
                    let mut v = view.clone();
                    overtake(&mut v, &c, now);
                    for ((_, t), w) in queue.iter_mut().zip(v) { *t = w; }
                    let (id, t) = queue.remove(c.index);
                    prop_assert!(runs_on(s, &t));
                    if t.checkpoint.is_some() { seats[s].loaded = t.checkpoint.clone(); }
                    seats[s].activity = Activity::Busy(t.checkpoint);
                    ran.push(id);
                    claimed = true;
                    break;
                }
            }
            if !claimed {
                prop_assert!(!busy.is_empty(), "every backend idle, none takes any of {} tasks", queue.len());
                for s in busy { seats[s].activity = Activity::Idle; }
            }
        }
        ran.sort_unstable();
        prop_assert_eq!(ran, (0..cks.len()).collect::<Vec<_>>());
    }

    /// The projection for one backend is the sequence of its claims.
    #[test]
    fn the_projection_is_the_order_claims_take(cks in checkpoints(4), loaded in 0u8..4) {
        let q = waiting(&cks);
        let l = format!("ck{loaded}");
        let claims = drain_one(q.clone(), Some(&l), &Rules::default());
        let s = seat(Some(&l), q.len());
        let p = project(&q, &[s], &[0], &[MIN], &Rules::default(), 0);
        prop_assert_eq!(p.iter().map(|s| s.index).collect::<Vec<_>>(), claims);
        prop_assert!(p.iter().all(|s| s.seat == Some(0)));
    }
}
