//! The task lists' columns: which exist, what each shows of a task, which are shown
//! (remembered as a short text), and the CSS grid tracks of a row.

use scheduler_api::Task;
use serde_json::Value;

/// One optional column of a task row (the selection box, the label and the actions are
/// always there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Col {
    /// First result (finished) or live preview (running).
    Thumb,
    /// Checkpoint title.
    Checkpoint,
    /// Sampler.
    Sampler,
    /// Sampling steps.
    Steps,
    /// CFG scale.
    Cfg,
    /// Width × height.
    Size,
    /// Batch count × batch size.
    Batch,
    /// When it was queued.
    Created,
    /// When it finished (history) or is expected to start (queue).
    Time,
    /// Status chip.
    Status,
}

impl Col {
    /// Every column, in display order.
    pub const ALL: [Col; 10] = [
        Col::Thumb,
        Col::Checkpoint,
        Col::Sampler,
        Col::Steps,
        Col::Cfg,
        Col::Size,
        Col::Batch,
        Col::Created,
        Col::Time,
        Col::Status,
    ];

    /// Stable key (stored, CSS class `c-<key>`).
    pub fn key(self) -> &'static str {
        match self {
            Col::Thumb => "thumb",
            Col::Checkpoint => "checkpoint",
            Col::Sampler => "sampler",
            Col::Steps => "steps",
            Col::Cfg => "cfg",
            Col::Size => "size",
            Col::Batch => "batch",
            Col::Created => "created",
            Col::Time => "time",
            Col::Status => "status",
        }
    }

    /// Header text; `queue` names the time column of the queue ("Starts").
    pub fn label(self, queue: bool) -> &'static str {
        match self {
            Col::Thumb => "Image",
            Col::Checkpoint => "Checkpoint",
            Col::Sampler => "Sampler",
            Col::Steps => "Steps",
            Col::Cfg => "CFG",
            Col::Size => "Size",
            Col::Batch => "Batch",
            Col::Created => "Queued",
            Col::Time if queue => "Starts ≈",
            Col::Time => "Finished",
            Col::Status => "Status",
        }
    }

    /// The CSS grid track of the column.
    pub fn track(self) -> &'static str {
        match self {
            Col::Thumb => "48px",
            Col::Checkpoint => "minmax(80px,150px)",
            Col::Sampler => "minmax(60px,110px)",
            Col::Steps => "44px",
            Col::Cfg => "40px",
            Col::Size => "78px",
            Col::Batch => "44px",
            Col::Created | Col::Time => "minmax(70px,118px)",
            Col::Status => "84px",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The text a parameter column shows for a task (`None` for the columns that are not a
    /// parameter: image, times, status).
    pub fn text(self, t: &Task) -> Option<String> {
        let p = &t.params;
        let s = |k: &str| param_text(p.get(k));
        Some(match self {
            Col::Checkpoint => checkpoint_text(t),
            Col::Sampler => s("sampler_name"),
            Col::Steps => s("steps"),
            Col::Cfg => s("cfg_scale"),
            Col::Size => format!("{}×{}", s("width"), s("height")),
            Col::Batch => format!("{}×{}", s("n_iter"), s("batch_size")),
            Col::Thumb | Col::Created | Col::Time | Col::Status => return None,
        })
    }
}

/// A parameter as short text (`—` when absent).
fn param_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

/// The checkpoint a task asks for, without its `[hash]` suffix; "Current" when it takes
/// whatever is loaded.
pub fn checkpoint_text(t: &Task) -> String {
    match t.params.get("checkpoint").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => c
            .rsplit_once(" [")
            .filter(|(_, h)| h.ends_with(']'))
            .map_or(c, |(name, _)| name)
            .to_owned(),
        _ => "Current".into(),
    }
}

/// Which optional columns are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns(u16);

impl Default for Columns {
    /// Image, checkpoint, sampler, steps, size, time and status.
    fn default() -> Columns {
        [
            Col::Thumb,
            Col::Checkpoint,
            Col::Sampler,
            Col::Steps,
            Col::Size,
            Col::Time,
            Col::Status,
        ]
        .into_iter()
        .fold(Columns(0), |c, col| c.with(col, true))
    }
}

impl Columns {
    /// Whether a column is shown.
    pub fn shows(self, c: Col) -> bool {
        self.0 & c.bit() != 0
    }

    /// With a column shown or hidden.
    pub fn with(self, c: Col, on: bool) -> Columns {
        Columns(if on {
            self.0 | c.bit()
        } else {
            self.0 & !c.bit()
        })
    }

    /// The shown columns, in order.
    pub fn shown(self) -> impl Iterator<Item = Col> {
        Col::ALL.into_iter().filter(move |c| self.shows(*c))
    }

    /// The stored form: the shown keys, comma-separated.
    pub fn to_text(self) -> String {
        self.shown().map(Col::key).collect::<Vec<_>>().join(",")
    }

    /// Parses the stored form (unknown keys are ignored; `None` → the defaults).
    pub fn parse(s: Option<&str>) -> Columns {
        let Some(s) = s else {
            return Columns::default();
        };
        s.split(',').fold(Columns(0), |c, k| {
            match Col::ALL.iter().find(|col| col.key() == k.trim()) {
                Some(col) => c.with(*col, true),
                None => c,
            }
        })
    }

    /// `grid-template-columns` of a row: selection box, [handle (queue),] the label, the
    /// shown columns, the actions.
    pub fn template(self, handle: bool) -> String {
        let mut t = String::from("26px ");
        if handle {
            t.push_str("16px ");
        }
        t.push_str("minmax(120px,1fr)");
        for c in self.shown() {
            t.push(' ');
            t.push_str(c.track());
        }
        // The actions have a fixed width (three buttons in the queue, four in the history:
        // the group button shows on some rows only), so every row's cells line up.
        t.push_str(if handle { " 92px" } else { " 124px" });
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(params: Value) -> Task {
        serde_json::from_value(json!({
            "id": "t1", "api_task_id": null, "api_task_callback": null, "name": null,
            "type": "txt2img", "status": "done", "params": params, "priority": 0,
            "position": null, "result": null, "bookmarked": false,
            "created_at": 0, "updated_at": 0,
        }))
        .unwrap()
    }

    #[test]
    fn cells_show_the_parameters() {
        let t = task(json!({
            "checkpoint": "sdxl/juggernaut [abc123]", "sampler_name": "Euler a", "steps": 30,
            "cfg_scale": 6.5, "width": 832, "height": 1216, "n_iter": 2, "batch_size": 1,
        }));
        assert_eq!(Col::Checkpoint.text(&t).unwrap(), "sdxl/juggernaut");
        assert_eq!(Col::Sampler.text(&t).unwrap(), "Euler a");
        assert_eq!(Col::Steps.text(&t).unwrap(), "30");
        assert_eq!(Col::Cfg.text(&t).unwrap(), "6.5");
        assert_eq!(Col::Size.text(&t).unwrap(), "832×1216");
        assert_eq!(Col::Batch.text(&t).unwrap(), "2×1");
        assert_eq!(Col::Thumb.text(&t), None);
        let bare = task(json!({ "checkpoint": null }));
        assert_eq!(Col::Checkpoint.text(&bare).unwrap(), "Current");
        assert_eq!(Col::Steps.text(&bare).unwrap(), "—");
        let odd = task(json!({ "checkpoint": "name [not a hash" }));
        assert_eq!(Col::Checkpoint.text(&odd).unwrap(), "name [not a hash");
    }

    #[test]
    fn shown_columns_round_trip_through_their_text() {
        let d = Columns::default();
        assert_eq!(
            d.to_text(),
            "thumb,checkpoint,sampler,steps,size,time,status"
        );
        assert_eq!(Columns::parse(Some(&d.to_text())), d);
        assert_eq!(Columns::parse(None), d);
        let c = d.with(Col::Cfg, true).with(Col::Thumb, false);
        assert!(c.shows(Col::Cfg) && !c.shows(Col::Thumb));
        assert_eq!(Columns::parse(Some(&c.to_text())), c);
        assert_eq!(
            Columns::parse(Some("steps, nonsense ,")),
            Columns(0).with(Col::Steps, true)
        );
        assert_eq!(Columns::parse(Some("")).shown().count(), 0);
        assert_eq!(
            Columns(0).with(Col::Steps, true).template(true),
            "26px 16px minmax(120px,1fr) 44px 92px"
        );
    }
}
