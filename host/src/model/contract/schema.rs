//! The request contract's type model: what SD.Next's request models declare for each field
//! (JSON types, nested models, lists, unions, enums, numeric bounds, required fields), and
//! its compact text form, the table committed in the repository.
//!
//! The text form, one model per block:
//!
//! ```text
//! txt2img StableDiffusionProcessingTxt2Img
//! model ItemFace
//!   source_images [string] required
//!   ip_strength number{>=0,<=2}
//! ```
//!
//! Types: `int`, `number`, `string`, `bool`, `null`, `any`, `object` (any mapping), `[T]`
//! (a list of T), `@Name` (a model), `enum[…]` (a JSON array of the allowed values), `never`
//! (a server-side object no request can carry), `A|B` (either); `int` and `number` may carry
//! bounds `{>=x,<=y,>x,<y}`.

use std::collections::HashMap;

use scheduler_api::TaskType;
use serde_json::Value;

/// Numeric bounds (pydantic's `ge`, `le`, `gt`, `lt`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bounds {
    /// `>=`.
    pub min: Option<f64>,
    /// `<=`.
    pub max: Option<f64>,
    /// `>`.
    pub gt: Option<f64>,
    /// `<`.
    pub lt: Option<f64>,
}

impl Bounds {
    /// Whether there is no bound.
    pub fn is_empty(&self) -> bool {
        self.min.is_none() && self.max.is_none() && self.gt.is_none() && self.lt.is_none()
    }
}

/// A field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Anything (`{}` in the schema).
    Any,
    /// `null` only.
    Null,
    /// A boolean (pydantic's lax forms accepted).
    Bool,
    /// An integer (numeric strings and integral numbers accepted).
    Int(Bounds),
    /// A number (numeric strings accepted).
    Number(Bounds),
    /// A string (nothing else: pydantic does not turn numbers into strings).
    Str,
    /// Any JSON object (a `dict`).
    Object,
    /// A list of items of this type.
    List(Box<Ty>),
    /// An object of this model.
    Model(String),
    /// One of these.
    Union(Vec<Ty>),
    /// One of these values.
    Enum(Vec<Value>),
    /// No JSON value: SD.Next types the field as a server-side object (a PIL image, a
    /// control unit) that a request cannot carry; only `null` or an empty list get through
    /// where the type allows them.
    Never,
}

/// One field of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Whether a request must give it.
    pub required: bool,
}

/// A request model: its fields in declaration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
}

impl Model {
    /// A model of these fields.
    pub fn new(fields: Vec<Field>) -> Model {
        let index = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        Model { fields, index }
    }

    /// The field of this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.index.get(name).map(|&i| &self.fields[i])
    }

    /// Every field, in declaration order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }
}

/// The request contract of one SD.Next version: each task type's request model and the
/// models they use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// The request model of txt2img, img2img and control (by [`root_slot`]).
    roots: [Option<String>; 3],
    models: HashMap<String, Model>,
    /// Model names in the order they were added (for a stable text form).
    order: Vec<String>,
}

/// The slot of a task type in [`Schema`]'s roots.
pub fn root_slot(kind: TaskType) -> usize {
    match kind {
        TaskType::Txt2img => 0,
        TaskType::Img2img => 1,
        TaskType::Control => 2,
    }
}

const KINDS: [TaskType; 3] = [TaskType::Txt2img, TaskType::Img2img, TaskType::Control];

impl Schema {
    /// The request model of a task type, when known.
    pub fn root(&self, kind: TaskType) -> Option<&Model> {
        self.roots[root_slot(kind)]
            .as_deref()
            .and_then(|n| self.models.get(n))
    }

    /// The name of a task type's request model.
    pub fn root_name(&self, kind: TaskType) -> Option<&str> {
        self.roots[root_slot(kind)].as_deref()
    }

    /// Sets a task type's request model name.
    pub fn set_root(&mut self, kind: TaskType, name: &str) {
        self.roots[root_slot(kind)] = Some(name.to_owned());
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// Adds (or replaces) a model.
    pub fn insert(&mut self, name: &str, model: Model) {
        if !self.models.contains_key(name) {
            self.order.push(name.to_owned());
        }
        self.models.insert(name.to_owned(), model);
    }

    /// Takes from `other` each task type's request model this schema lacks (with the models
    /// it uses that this one lacks too). SD.Next `058a7f0`'s document names the Control
    /// request model without defining it; the committed table's is used then.
    pub fn fill_from(&mut self, other: &Schema) {
        for kind in KINDS {
            if self.root(kind).is_some() {
                continue;
            }
            let Some(name) = other.root_name(kind) else {
                continue;
            };
            self.set_root(kind, name);
            let mut stack = vec![name.to_owned()];
            while let Some(n) = stack.pop() {
                if self.models.contains_key(&n) {
                    continue;
                }
                if let Some(m) = other.model(&n) {
                    for f in m.fields() {
                        refs(&f.ty, &mut stack);
                    }
                    self.insert(&n, m.clone());
                }
            }
        }
    }

    /// The compact text form (the committed table).
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for kind in KINDS {
            if let Some(r) = self.root_name(kind) {
                out.push_str(&format!("{} {r}\n", kind.as_str()));
            }
        }
        for name in &self.order {
            let m = &self.models[name];
            out.push_str(&format!("\nmodel {name}\n"));
            for f in m.fields() {
                out.push_str("  ");
                out.push_str(&f.name);
                out.push(' ');
                out.push_str(&ty_text(&f.ty));
                if f.required {
                    out.push_str(" required");
                }
                out.push('\n');
            }
        }
        out
    }

    /// Reads the text form ([`Schema::to_table`]); `#` starts a comment line.
    pub fn from_table(text: &str) -> Result<Schema, String> {
        let mut s = Schema::default();
        let mut current: Option<(String, Vec<Field>)> = None;
        for (no, raw) in text.lines().enumerate() {
            let err = |m: &str| format!("line {}: {m}: {raw:?}", no + 1);
            let line = raw.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("  ") {
                let Some((_, fields)) = current.as_mut() else {
                    return Err(err("a field outside a model"));
                };
                let (name, rest) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("expected `name type`"))?;
                let (ty_src, required) = match rest.strip_suffix(" required") {
                    Some(t) => (t, true),
                    None => (rest, false),
                };
                let ty = parse_ty(ty_src).map_err(|e| err(&e))?;
                fields.push(Field {
                    name: name.to_owned(),
                    ty,
                    required,
                });
                continue;
            }
            let (head, name) = line
                .split_once(' ')
                .ok_or_else(|| err("expected `model Name` or `<task type> Name`"))?;
            if head == "model" {
                if let Some((n, f)) = current.take() {
                    s.insert(&n, Model::new(f));
                }
                current = Some((name.to_owned(), Vec::new()));
            } else {
                let kind = TaskType::parse(head).ok_or_else(|| err("unknown task type"))?;
                s.set_root(kind, name);
            }
        }
        if let Some((n, f)) = current.take() {
            s.insert(&n, Model::new(f));
        }
        Ok(s)
    }
}

/// Model names a type refers to.
fn refs(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Model(n) => out.push(n.clone()),
        Ty::List(t) => refs(t, out),
        Ty::Union(ts) => ts.iter().for_each(|t| refs(t, out)),
        _ => {}
    }
}

/// Model names reachable from `ty` (for the generator's pruning).
pub(super) fn referenced(ty: &Ty) -> Vec<String> {
    let mut v = Vec::new();
    refs(ty, &mut v);
    v
}

fn num_text(x: f64) -> String {
    // Integral bounds print without a fraction; others as Rust prints them (shortest exact).
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn bounds_text(b: &Bounds) -> String {
    if b.is_empty() {
        return String::new();
    }
    let mut parts = Vec::new();
    if let Some(x) = b.min {
        parts.push(format!(">={}", num_text(x)));
    }
    if let Some(x) = b.gt {
        parts.push(format!(">{}", num_text(x)));
    }
    if let Some(x) = b.max {
        parts.push(format!("<={}", num_text(x)));
    }
    if let Some(x) = b.lt {
        parts.push(format!("<{}", num_text(x)));
    }
    format!("{{{}}}", parts.join(","))
}

/// A type in the text form.
pub fn ty_text(ty: &Ty) -> String {
    match ty {
        Ty::Any => "any".into(),
        Ty::Null => "null".into(),
        Ty::Bool => "bool".into(),
        Ty::Int(b) => format!("int{}", bounds_text(b)),
        Ty::Number(b) => format!("number{}", bounds_text(b)),
        Ty::Str => "string".into(),
        Ty::Object => "object".into(),
        Ty::List(t) => format!("[{}]", ty_text(t)),
        Ty::Model(n) => format!("@{n}"),
        Ty::Union(ts) => ts.iter().map(ty_text).collect::<Vec<_>>().join("|"),
        Ty::Enum(vs) => format!("enum{}", Value::Array(vs.clone())),
        Ty::Never => "never".into(),
    }
}

/// Reads a type of the text form.
pub fn parse_ty(src: &str) -> Result<Ty, String> {
    let mut p = TyParser {
        s: src.as_bytes(),
        src,
        i: 0,
    };
    let t = p.union()?;
    if p.i != p.s.len() {
        return Err(format!("unexpected text at {}", p.i));
    }
    Ok(t)
}

struct TyParser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl TyParser<'_> {
    fn union(&mut self) -> Result<Ty, String> {
        let mut v = vec![self.primary()?];
        while self.s.get(self.i) == Some(&b'|') {
            self.i += 1;
            v.push(self.primary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Ty::Union(v)
        })
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.i += 1;
        }
        &self.src[start..self.i]
    }

    fn primary(&mut self) -> Result<Ty, String> {
        match self.s.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let t = self.union()?;
                if self.s.get(self.i) != Some(&b']') {
                    return Err("expected `]`".into());
                }
                self.i += 1;
                Ok(Ty::List(Box::new(t)))
            }
            Some(b'@') => {
                self.i += 1;
                let w = self.word().to_owned();
                if w.is_empty() {
                    return Err("expected a model name after `@`".into());
                }
                Ok(Ty::Model(w))
            }
            _ => {
                let w = self.word().to_owned();
                match w.as_str() {
                    "any" => Ok(Ty::Any),
                    "null" => Ok(Ty::Null),
                    "bool" => Ok(Ty::Bool),
                    "string" => Ok(Ty::Str),
                    "object" => Ok(Ty::Object),
                    "never" => Ok(Ty::Never),
                    "int" => Ok(Ty::Int(self.bounds()?)),
                    "number" => Ok(Ty::Number(self.bounds()?)),
                    "enum" => {
                        // A JSON array up to its matching `]` (values hold no `|`).
                        let rest = &self.src[self.i..];
                        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
                        match de.next() {
                            Some(Ok(Value::Array(vs))) => {
                                self.i += de.byte_offset();
                                Ok(Ty::Enum(vs))
                            }
                            _ => Err("expected a JSON array after `enum`".into()),
                        }
                    }
                    other => Err(format!("unknown type `{other}`")),
                }
            }
        }
    }

    fn bounds(&mut self) -> Result<Bounds, String> {
        let mut b = Bounds::default();
        if self.s.get(self.i) != Some(&b'{') {
            return Ok(b);
        }
        let end = self.src[self.i..].find('}').ok_or("expected `}`")? + self.i;
        for part in self.src[self.i + 1..end].split(',') {
            let (slot, num) = if let Some(n) = part.strip_prefix(">=") {
                (&mut b.min, n)
            } else if let Some(n) = part.strip_prefix("<=") {
                (&mut b.max, n)
            } else if let Some(n) = part.strip_prefix('>') {
                (&mut b.gt, n)
            } else if let Some(n) = part.strip_prefix('<') {
                (&mut b.lt, n)
            } else {
                return Err(format!("bad bound `{part}`"));
            };
            *slot = Some(num.parse().map_err(|_| format!("bad number `{num}`"))?);
        }
        self.i = end + 1;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_back_as_written() {
        for src in [
            "int",
            "int|null",
            "number{>=0,<=2}",
            "number{>0,<=1}",
            "[string]|null",
            "[@ItemIPAdapter]|null",
            "@ItemFace|null",
            "int|string",
            "object|null",
            "[any]",
            "[never]|null",
            "enum[\"a\",1,null]",
            "number{>=0.5,<1.25}",
        ] {
            let t = parse_ty(src).unwrap();
            assert_eq!(ty_text(&t), src);
        }
        assert!(parse_ty("integer").is_err());
        assert!(parse_ty("[int").is_err());
    }

    #[test]
    fn a_table_reads_back_as_written() {
        let text = "txt2img A\ncontrol C\n\nmodel A\n  steps int|null\n  face @F|null\n\nmodel F\n  source_images [string] required\n  strength number{>=0,<=2}\n";
        let s = Schema::from_table(text).unwrap();
        assert_eq!(s.to_table(), text);
        assert!(s.root(TaskType::Txt2img).unwrap().field("steps").is_some());
        assert!(s.root(TaskType::Img2img).is_none());
        assert!(
            s.root(TaskType::Control).is_none(),
            "C is named, not defined"
        );
        assert!(
            s.model("F")
                .unwrap()
                .field("source_images")
                .unwrap()
                .required
        );
    }

    #[test]
    fn fill_from_takes_a_missing_root_and_its_models() {
        let mut live = Schema::from_table("txt2img A\ncontrol C\n\nmodel A\n  x int\n").unwrap();
        let table = Schema::from_table(
            "control C\n\nmodel C\n  unit @U|null\n\nmodel U\n  s number\n\nmodel A\n  y int\n",
        )
        .unwrap();
        live.fill_from(&table);
        assert!(
            live.root(TaskType::Control)
                .unwrap()
                .field("unit")
                .is_some()
        );
        assert!(live.model("U").is_some());
        assert!(
            live.root(TaskType::Txt2img).unwrap().field("y").is_none(),
            "a root the live schema has is kept"
        );
    }
}
