//! The queue's ETA as pure functions: how much work a task is (megapixel-steps), each
//! backend's speed (moving averages of its measured runs and checkpoint loads), and when
//! each pending task is expected to start, walking the order the scheduler will run them in
//! ([`super::policy::project`] for the look-ahead window, queue order beyond it).
//!
//! Honest by construction: with no backend measured yet there is no estimate (`None`, shown
//! as "—"); a backend not measured yet is assumed as fast as the measured ones on average; a
//! checkpoint load is assumed to take the measured loads' average (nothing before the first
//! one is measured).

use scheduler_api::TaskType;
use serde_json::{Map, Value};

/// Runs averaged plainly before the moving average takes over.
const WARM_UP: u32 = 8;
/// Weight of a new run in the moving average (recent runs matter more: a backend's speed
/// changes with what else it does).
const ALPHA: f64 = 0.25;

/// A backend's measured speed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Speed {
    /// Generation time per megapixel-step (ms).
    pub ms_per_mpx_step: Option<f64>,
    /// Runs measured.
    pub samples: u32,
    /// Checkpoint load time (ms).
    pub load_ms: Option<f64>,
    /// Loads measured.
    pub loads: u32,
}

fn blend(old: Option<f64>, n: u32, new: f64) -> f64 {
    match old {
        None => new,
        Some(o) if n < WARM_UP => o + (new - o) / f64::from(n + 1),
        Some(o) => o + ALPHA * (new - o),
    }
}

impl Speed {
    /// With one more finished run: `gen_ms` of generation for `work` megapixel-steps.
    pub fn with_run(self, gen_ms: f64, work: f64) -> Speed {
        if !(work > 0.0 && gen_ms.is_finite() && gen_ms >= 0.0) {
            return self;
        }
        Speed {
            ms_per_mpx_step: Some(blend(self.ms_per_mpx_step, self.samples, gen_ms / work)),
            samples: self.samples.saturating_add(1),
            ..self
        }
    }

    /// With one more checkpoint load of `ms`.
    pub fn with_load(self, ms: f64) -> Speed {
        if !(ms.is_finite() && ms >= 0.0) {
            return self;
        }
        Speed {
            load_ms: Some(blend(self.load_ms, self.loads, ms)),
            loads: self.loads.saturating_add(1),
            ..self
        }
    }
}

fn num(p: &Map<String, Value>, k: &str, default: f64) -> f64 {
    p.get(k)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(default)
}

/// The work of a task in megapixel-steps: sampling steps × width × height × images, plus
/// the hires pass when enabled; img2img and Control run `steps × denoising strength` steps.
pub fn work(task_type: TaskType, p: &Map<String, Value>) -> f64 {
    let steps = num(p, "steps", 20.0);
    let (w, h) = (num(p, "width", 512.0), num(p, "height", 512.0));
    let images = num(p, "n_iter", 1.0) * num(p, "batch_size", 1.0);
    let denoise = num(p, "denoising_strength", 0.75).clamp(0.05, 1.0);
    let first = match task_type {
        TaskType::Txt2img => steps,
        TaskType::Img2img | TaskType::Control => (steps * denoise).max(1.0),
    };
    let mut per_image = first * w * h;
    if p.get("enable_hr").and_then(Value::as_bool) == Some(true) {
        let scale = num(p, "hr_scale", 2.0);
        let hr_steps = num(p, "hr_second_pass_steps", steps);
        per_image += hr_steps * denoise * w * h * scale * scale;
    }
    per_image * images / 1e6
}

/// The request fields [`work`] reads, rebuilt from a lean scan of the queue (`values` in
/// the order of [`WORK_FIELDS`]).
pub fn work_fields(values: [Option<f64>; 8], enable_hr: bool) -> Map<String, Value> {
    let mut m: Map<String, Value> = WORK_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(k, v)| Some(((*k).to_owned(), Value::from(v?))))
        .collect();
    m.insert("enable_hr".into(), Value::Bool(enable_hr));
    m
}

/// The numeric request fields [`work`] reads (besides `enable_hr`).
pub const WORK_FIELDS: [&str; 8] = [
    "steps",
    "width",
    "height",
    "n_iter",
    "batch_size",
    "denoising_strength",
    "hr_scale",
    "hr_second_pass_steps",
];

/// A checkpoint title as the scheduler compares them (without the ` [hash]` SD.Next adds).
pub fn checkpoint_key(title: &str) -> &str {
    title
        .rsplit_once(" [")
        .filter(|(_, h)| h.ends_with(']'))
        .map_or(title, |(name, _)| name)
}

/// A backend as the ETA walks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    /// When it is free (ms from now): its running task's expected remainder, 0 when idle.
    pub free_in_ms: f64,
    /// The checkpoint it has loaded (a [`checkpoint_key`]).
    pub loaded: Option<String>,
    /// Its speed.
    pub speed: Speed,
    /// Whether it takes work (not down, stalled, disabled).
    pub active: bool,
}

/// A pending task as the ETA walks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its work (megapixel-steps).
    pub work: f64,
    /// Its checkpoint key (`None`: whatever is loaded, never a load).
    pub checkpoint: Option<String>,
    /// The backend the scheduler's projection gives it (`None`: the first one free).
    pub seat: Option<usize>,
}

/// When a task is expected to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    /// Start (ms from now).
    pub start_ms: f64,
    /// End (ms from now).
    pub end_ms: f64,
    /// The backend (index into the clocks).
    pub seat: usize,
    /// Whether a checkpoint load comes first.
    pub loads: bool,
}

/// The typical speeds to assume for a backend not measured yet (the mean of the measured
/// ones); `None` when none is measured: no estimate at all.
pub fn fallback(clocks: &[Clock]) -> Option<Speed> {
    let known: Vec<f64> = clocks
        .iter()
        .filter_map(|c| c.speed.ms_per_mpx_step)
        .collect();
    if known.is_empty() {
        return None;
    }
    let loads: Vec<f64> = clocks.iter().filter_map(|c| c.speed.load_ms).collect();
    Some(Speed {
        ms_per_mpx_step: Some(known.iter().sum::<f64>() / known.len() as f64),
        samples: 0,
        load_ms: (!loads.is_empty()).then(|| loads.iter().sum::<f64>() / loads.len() as f64),
        loads: 0,
    })
}

/// Walks the jobs in run order: each goes to its projected backend (or the first one free),
/// starts when that backend is free, and takes its work at that backend's speed plus a
/// checkpoint load when the backend has another one loaded. `None` for every job when no
/// backend is measured yet or none is active.
pub fn plan(jobs: &[Job], clocks: &mut [Clock]) -> Vec<Option<Planned>> {
    let Some(typical) = fallback(clocks) else {
        return vec![None; jobs.len()];
    };
    jobs.iter()
        .map(|j| {
            let seat = j
                .seat
                .filter(|s| clocks.get(*s).is_some_and(|c| c.active))
                .or_else(|| {
                    (0..clocks.len())
                        .filter(|&s| clocks[s].active)
                        .min_by(|&a, &b| clocks[a].free_in_ms.total_cmp(&clocks[b].free_in_ms))
                })?;
            let c = &mut clocks[seat];
            let rate = c
                .speed
                .ms_per_mpx_step
                .or(typical.ms_per_mpx_step)
                .unwrap_or(0.0);
            let loads = j.checkpoint.is_some() && j.checkpoint != c.loaded;
            let load = if loads {
                c.speed.load_ms.or(typical.load_ms).unwrap_or(0.0)
            } else {
                0.0
            };
            let start_ms = c.free_in_ms;
            let end_ms = start_ms + load + rate * j.work;
            c.free_in_ms = end_ms;
            if j.checkpoint.is_some() {
                c.loaded = j.checkpoint.clone();
            }
            Some(Planned {
                start_ms,
                end_ms,
                seat,
                loads,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn clock(rate: Option<f64>, load: Option<f64>, loaded: &str) -> Clock {
        Clock {
            free_in_ms: 0.0,
            loaded: Some(loaded.into()),
            speed: Speed {
                ms_per_mpx_step: rate,
                samples: u32::from(rate.is_some()),
                load_ms: load,
                loads: u32::from(load.is_some()),
            },
            active: true,
        }
    }

    fn job(work: f64, ck: &str) -> Job {
        Job {
            work,
            checkpoint: Some(ck.into()),
            seat: None,
        }
    }

    #[test]
    fn work_counts_steps_pixels_images_and_hires() {
        let base = work(
            TaskType::Txt2img,
            &p(json!({"steps": 20, "width": 512, "height": 512})),
        );
        assert!((base - 20.0 * 0.262_144).abs() < 1e-9);
        let batch = work(
            TaskType::Txt2img,
            &p(json!({"steps": 20, "width": 512, "height": 512, "n_iter": 2, "batch_size": 3})),
        );
        assert!((batch - 6.0 * base).abs() < 1e-9);
        let hr = work(
            TaskType::Txt2img,
            &p(
                json!({"steps": 20, "width": 512, "height": 512, "enable_hr": true,
                      "hr_scale": 2, "denoising_strength": 0.5}),
            ),
        );
        assert!((hr - base * (1.0 + 0.5 * 4.0)).abs() < 1e-9);
        let i2i = work(
            TaskType::Img2img,
            &p(json!({"steps": 20, "width": 512, "height": 512, "denoising_strength": 0.5})),
        );
        assert!((i2i - base / 2.0).abs() < 1e-9);
        // Missing or silly values take the defaults, never zero or negative work.
        assert!(work(TaskType::Txt2img, &p(json!({"steps": -3, "width": "x"}))) > 0.0);
    }

    #[test]
    fn speeds_average_then_follow_recent_runs() {
        let mut s = Speed::default();
        for ms in [100.0, 200.0, 300.0] {
            s = s.with_run(ms, 1.0);
        }
        assert_eq!(s.samples, 3);
        assert!(
            (s.ms_per_mpx_step.unwrap() - 200.0).abs() < 1e-9,
            "plain mean while warming up"
        );
        for _ in 0..40 {
            s = s.with_run(1000.0, 2.0);
        }
        assert!(
            (s.ms_per_mpx_step.unwrap() - 500.0).abs() < 1.0,
            "follows recent runs"
        );
        assert_eq!(s.with_run(10.0, 0.0), s, "no work: not a sample");
        let l = Speed::default().with_load(3000.0).with_load(5000.0);
        assert_eq!((l.load_ms, l.loads), (Some(4000.0), 2));
        assert_eq!(checkpoint_key("sdxl/a [0123abcd]"), "sdxl/a");
        assert_eq!(checkpoint_key("plain"), "plain");
    }

    #[test]
    fn no_measured_backend_means_no_estimate() {
        let mut clocks = vec![clock(None, None, "a"), clock(None, Some(5.0), "b")];
        assert_eq!(
            plan(&[job(1.0, "a"), job(1.0, "b")], &mut clocks),
            vec![None, None]
        );
        let mut none_active = vec![Clock {
            active: false,
            ..clock(Some(10.0), None, "a")
        }];
        assert_eq!(plan(&[job(1.0, "a")], &mut none_active), vec![None]);
    }

    #[test]
    fn starts_follow_the_order_with_loads_where_the_checkpoint_changes() {
        // One backend, 100 ms per megapixel-step, loads of 2 s, "a" loaded; it is busy for 1 s.
        let mut clocks = vec![Clock {
            free_in_ms: 1000.0,
            ..clock(Some(100.0), Some(2000.0), "a")
        }];
        let jobs = [
            job(10.0, "a"),
            job(10.0, "b"),
            job(5.0, "b"),
            job(10.0, "a"),
        ];
        let plan = plan(&jobs, &mut clocks);
        let starts: Vec<f64> = plan.iter().map(|p| p.unwrap().start_ms).collect();
        assert_eq!(starts, [1000.0, 2000.0, 5000.0, 5500.0]);
        let loads: Vec<bool> = plan.iter().map(|p| p.unwrap().loads).collect();
        assert_eq!(loads, [false, true, false, true]);
        assert_eq!(plan[3].unwrap().end_ms, 5500.0 + 2000.0 + 1000.0);
    }

    #[test]
    fn an_unmeasured_backend_borrows_the_measured_pace_and_projected_seats_are_kept() {
        let mut clocks = vec![clock(Some(100.0), None, "a"), clock(None, None, "a")];
        let jobs = [
            Job {
                seat: Some(1),
                ..job(10.0, "a")
            },
            job(10.0, "a"),
            job(10.0, "a"),
        ];
        let plan = plan(&jobs, &mut clocks);
        let p: Vec<(usize, f64)> = plan
            .iter()
            .map(|x| (x.unwrap().seat, x.unwrap().start_ms))
            .collect();
        // Job 0 goes where the projection put it, at the borrowed pace; job 1 to the free
        // backend; job 2 to whichever is free first (both at 1000 ms: the first).
        assert_eq!(p, [(1, 0.0), (0, 0.0), (0, 1000.0)]);
    }
}
