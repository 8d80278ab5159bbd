//! Reading one item of an export array (ours, or the original extension's API tasks) into an
//! enqueue body. Original UI tasks (positional, pickled arguments) are refused; nothing is
//! executed or unpickled.

use scheduler_api::{CheckpointChoice, EnqueueRequest, TaskType, field};
use serde_json::{Map, Value};

use super::invalid::Invalid;
use super::spec::valid_task_id;

/// One export item made ready for import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The item's id, when it is a valid id.
    pub id: Option<String>,
    /// txt2img / img2img / control.
    pub task_type: TaskType,
    /// The enqueue body (run through [`super::TaskSpec::parse`] next).
    pub body: EnqueueRequest,
    /// Bookmark.
    pub bookmarked: bool,
}

/// Reads one item of an export array (ours or the original's).
pub fn import_item(item: &Value) -> Result<ImportItem, Invalid> {
    let obj = item
        .as_object()
        .ok_or_else(|| Invalid("item is not an object".into()))?;
    let params = match obj.get("params") {
        Some(Value::Object(p)) => p,
        Some(Value::String(s)) => {
            return import_item(&{
                let mut o = obj.clone();
                let parsed: Value =
                    serde_json::from_str(s).map_err(|_| Invalid("params is not JSON".into()))?;
                o.insert("params".into(), parsed);
                Value::Object(o)
            });
        }
        _ => return Err(Invalid("item has no params object".into())),
    };
    let original = params.contains_key("is_ui") && params.contains_key("args");
    let mut task_type = obj
        .get("type")
        .and_then(Value::as_str)
        .and_then(TaskType::parse);
    let mut body: Map<String, Value> = if original {
        if params.get("is_ui").and_then(Value::as_bool) == Some(true) {
            return Err(Invalid(
                "UI task of the original extension (positional, pickled arguments) cannot be imported; \
                 re-create it from the page"
                    .into(),
            ));
        }
        let Some(Value::Object(args)) = params.get("args") else {
            return Err(Invalid("args is not an object".into()));
        };
        if let Some(b) = params.get("is_img2img").and_then(Value::as_bool) {
            task_type = Some(if b {
                TaskType::Img2img
            } else {
                TaskType::Txt2img
            });
        }
        let mut body = args.clone();
        if let Some(ck) = params.get(field::CHECKPOINT).filter(|v| !v.is_null()) {
            body.insert(field::CHECKPOINT.into(), ck.clone());
        }
        body
    } else {
        params.clone()
    };
    let task_type = task_type.ok_or_else(|| Invalid("unknown task type".into()))?;
    if let Some(n) = obj.get("name").filter(|v| !v.is_null()) {
        body.entry(field::NAME).or_insert(n.clone());
    }
    if let Some(cb) = obj.get("api_task_callback").filter(|v| !v.is_null()) {
        body.entry(field::CALLBACK_URL).or_insert(cb.clone());
    }
    let body: EnqueueRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| Invalid(format!("invalid params: {e}")))?;
    if CheckpointChoice::parse(body.checkpoint.as_deref()).is_pattern() {
        return Err(Invalid("checkpoint patterns cannot be imported".into()));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|i| valid_task_id(i))
        // Ids are one id whatever their case: kept lower case.
        .map(str::to_ascii_lowercase);
    Ok(ImportItem {
        id,
        task_type,
        body,
        bookmarked: obj
            .get("bookmarked")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Why an import body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The body is not JSON (400).
    #[error("malformed JSON body: {0}")]
    Malformed(String),
    /// The body is JSON but not `{"content": "<text>"}`, or the text is not a JSON array (422).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outer {
    Start,
    /// After `{` or `,`: a key, or (only right after `{`) the end.
    Key {
        first: bool,
    },
    InKey {
        escape: bool,
    },
    Colon,
    Value,
    /// Inside the `content` string.
    Content,
    /// A `\` inside it: the escape's bytes so far are in `esc`.
    ContentEscape,
    /// Skipping another key's value: `depth` of brackets, inside a string, after a `\`.
    Skip {
        depth: u32,
        string: bool,
        escape: bool,
        scalar: bool,
    },
    After,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Start,
    /// The content does not start with `[`: kept whole (bounded by the body limit, no tree)
    /// to tell "not JSON" (with serde's reason) from "JSON, but not an array".
    NotArray,
    /// After `[` (`first`) or `,`: an item (or, right after `[`, the end).
    Item {
        first: bool,
    },
    /// Inside an item: bracket depth, in a string, after a `\`, a bare scalar.
    InItem {
        depth: u32,
        string: bool,
        escape: bool,
        scalar: bool,
    },
    After,
    End,
}

/// Reads an import body, `{"content": "<JSON text of an array>"}`, as it arrives, chunk by
/// chunk, and hands out the array's items one at a time: the `content` string is unescaped
/// on the fly and split into items without building the whole tree (memory: one item and
/// one escape). Other keys are skipped.
#[derive(Debug)]
pub struct ImportReader {
    outer: Outer,
    key: Vec<u8>,
    content_seen: bool,
    in_content: bool,
    esc: Vec<u8>,
    /// A `\uD8xx` high surrogate waiting for its low half.
    high: Option<u16>,
    inner: Inner,
    item: Vec<u8>,
    not_array: Vec<u8>,
    items: usize,
    /// Bytes of the body read so far (for messages).
    offset: usize,
}

impl Default for ImportReader {
    fn default() -> Self {
        ImportReader::new()
    }
}

fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl ImportReader {
    /// A reader at the start of a body.
    pub fn new() -> ImportReader {
        ImportReader {
            outer: Outer::Start,
            key: Vec::new(),
            content_seen: false,
            in_content: false,
            esc: Vec::new(),
            high: None,
            inner: Inner::Start,
            item: Vec::new(),
            not_array: Vec::new(),
            items: 0,
            offset: 0,
        }
    }

    /// Items handed out so far.
    pub fn items(&self) -> usize {
        self.items
    }

    fn malformed(&self, what: &str) -> ReadError {
        ReadError::Malformed(format!("{what} at byte {}", self.offset))
    }

    /// Feeds the next chunk of the body; complete items are appended to `out` (their JSON
    /// text, not yet parsed).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), ReadError> {
        for &b in chunk {
            self.outer_byte(b, out)?;
            self.offset += 1;
        }
        Ok(())
    }

    /// The body ended: it must have been a whole object with a `content` array.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), ReadError> {
        if let Outer::Skip {
            depth: 0,
            scalar: true,
            ..
        } = self.outer
        {
            self.outer = Outer::After;
        }
        if self.outer != Outer::End && self.outer != Outer::After {
            return Err(self.malformed("unexpected end of the body"));
        }
        if self.outer == Outer::After {
            return Err(self.malformed("unexpected end of the body (no closing `}`)"));
        }
        if !self.content_seen {
            return Err(ReadError::Invalid(
                "invalid body: missing field `content`".into(),
            ));
        }
        let _ = out;
        Ok(())
    }

    fn outer_byte(&mut self, b: u8, out: &mut Vec<Vec<u8>>) -> Result<(), ReadError> {
        match self.outer {
            Outer::Start => match b {
                _ if ws(b) => {}
                b'{' => self.outer = Outer::Key { first: true },
                _ => {
                    return Err(ReadError::Invalid(
                        "invalid body: expected an object with `content`".into(),
                    ));
                }
            },
            Outer::Key { first } => match b {
                _ if ws(b) => {}
                b'"' => {
                    self.key.clear();
                    self.outer = Outer::InKey { escape: false };
                }
                b'}' if first => self.outer = Outer::End,
                _ => return Err(self.malformed("expected a key")),
            },
            Outer::InKey { escape } => {
                if escape {
                    self.key.push(b);
                    self.outer = Outer::InKey { escape: false };
                } else if b == b'\\' {
                    self.key.push(b);
                    self.outer = Outer::InKey { escape: true };
                } else if b == b'"' {
                    // An escaped key (`"cont\u0065nt"`) reads as serde reads it.
                    if self.key.contains(&b'\\') {
                        let mut quoted = Vec::with_capacity(self.key.len() + 2);
                        quoted.push(b'"');
                        quoted.extend_from_slice(&self.key);
                        quoted.push(b'"');
                        self.key = serde_json::from_slice::<String>(&quoted)
                            .map(String::into_bytes)
                            .unwrap_or_default();
                    }
                    self.outer = Outer::Colon;
                } else if self.key.len() < 256 {
                    self.key.push(b);
                }
            }
            Outer::Colon => match b {
                _ if ws(b) => {}
                b':' => self.outer = Outer::Value,
                _ => return Err(self.malformed("expected `:`")),
            },
            Outer::Value => {
                if ws(b) {
                    return Ok(());
                }
                if self.key == b"content" {
                    if self.content_seen {
                        return Err(ReadError::Invalid(
                            "invalid body: duplicate field `content`".into(),
                        ));
                    }
                    if b != b'"' {
                        return Err(ReadError::Invalid(
                            "invalid body: `content` must be a string (the JSON text of an export array)"
                                .into(),
                        ));
                    }
                    self.content_seen = true;
                    self.in_content = true;
                    self.outer = Outer::Content;
                } else {
                    self.outer = match b {
                        b'"' => Outer::Skip {
                            depth: 0,
                            string: true,
                            escape: false,
                            scalar: false,
                        },
                        b'{' | b'[' => Outer::Skip {
                            depth: 1,
                            string: false,
                            escape: false,
                            scalar: false,
                        },
                        _ => Outer::Skip {
                            depth: 0,
                            string: false,
                            escape: false,
                            scalar: true,
                        },
                    };
                }
            }
            Outer::Content => match b {
                b'"' => {
                    if self.high.is_some() {
                        return Err(self.malformed("unpaired surrogate in `content`"));
                    }
                    self.in_content = false;
                    self.content_end()?;
                    self.outer = Outer::After;
                }
                b'\\' => {
                    self.esc.clear();
                    self.outer = Outer::ContentEscape;
                }
                0..=0x1f => return Err(self.malformed("control character in a string")),
                _ => {
                    if self.high.is_some() {
                        return Err(self.malformed("unpaired surrogate in `content`"));
                    }
                    self.inner_byte(b, out)?;
                }
            },
            Outer::ContentEscape => self.escape_byte(b, out)?,
            Outer::Skip {
                depth,
                string,
                escape,
                scalar,
            } => {
                let mut s = (depth, string, escape);
                if scalar {
                    if ws(b) || b == b',' || b == b'}' {
                        self.outer = Outer::After;
                        return self.outer_byte(b, out);
                    }
                    return Ok(());
                }
                if string {
                    if escape {
                        s.2 = false;
                    } else if b == b'\\' {
                        s.2 = true;
                    } else if b == b'"' {
                        s.1 = false;
                        if depth == 0 {
                            self.outer = Outer::After;
                            return Ok(());
                        }
                    }
                } else {
                    match b {
                        b'"' => s.1 = true,
                        b'{' | b'[' => s.0 += 1,
                        b'}' | b']' => {
                            s.0 -= 1;
                            if s.0 == 0 {
                                self.outer = Outer::After;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                }
                self.outer = Outer::Skip {
                    depth: s.0,
                    string: s.1,
                    escape: s.2,
                    scalar: false,
                };
            }
            Outer::After => match b {
                _ if ws(b) => {}
                b',' => self.outer = Outer::Key { first: false },
                b'}' => self.outer = Outer::End,
                _ => return Err(self.malformed("expected `,` or `}`")),
            },
            Outer::End => {
                if !ws(b) {
                    return Err(self.malformed("trailing characters"));
                }
            }
        }
        Ok(())
    }

    /// One byte after a `\` in the content string (the escape may span chunks).
    fn escape_byte(&mut self, b: u8, out: &mut Vec<Vec<u8>>) -> Result<(), ReadError> {
        if self.esc.is_empty() {
            let simple = match b {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'u' => None,
                _ => return Err(self.malformed("invalid escape in a string")),
            };
            if let Some(c) = simple {
                if self.high.is_some() {
                    return Err(self.malformed("unpaired surrogate in `content`"));
                }
                self.outer = Outer::Content;
                return self.inner_byte(c, out);
            }
            self.esc.push(b'u');
            return Ok(());
        }
        if !b.is_ascii_hexdigit() {
            return Err(self.malformed("invalid \\u escape"));
        }
        self.esc.push(b);
        if self.esc.len() < 5 {
            return Ok(());
        }
        let hex = std::str::from_utf8(&self.esc[1..]).unwrap_or("0");
        let unit =
            u16::from_str_radix(hex, 16).map_err(|_| self.malformed("invalid \\u escape"))?;
        self.outer = Outer::Content;
        let c = match (self.high.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(unit);
                return Ok(());
            }
            (None, 0xDC00..=0xDFFF) => {
                return Err(self.malformed("unpaired surrogate in `content`"));
            }
            (None, u) => char::from_u32(u32::from(u)),
            (Some(h), 0xDC00..=0xDFFF) => char::from_u32(
                0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(unit) - 0xDC00),
            ),
            (Some(_), _) => return Err(self.malformed("unpaired surrogate in `content`")),
        };
        let c = c.ok_or_else(|| self.malformed("invalid \\u escape"))?;
        let mut buf = [0u8; 4];
        for &x in c.encode_utf8(&mut buf).as_bytes() {
            self.inner_byte(x, out)?;
        }
        Ok(())
    }

    fn not_array(&self) -> ReadError {
        ReadError::Invalid("Import failed: content is not a JSON array".into())
    }

    fn not_json(&self, what: &str) -> ReadError {
        ReadError::Invalid(format!(
            "Import failed: content is not JSON: {what} after item {}",
            self.items
        ))
    }

    /// One byte of the content text (the array).
    fn inner_byte(&mut self, b: u8, out: &mut Vec<Vec<u8>>) -> Result<(), ReadError> {
        match self.inner {
            Inner::Start => match b {
                _ if ws(b) => {}
                b'[' => self.inner = Inner::Item { first: true },
                _ => {
                    self.not_array.push(b);
                    self.inner = Inner::NotArray;
                }
            },
            Inner::NotArray => self.not_array.push(b),
            Inner::Item { first } => match b {
                _ if ws(b) => {}
                b']' if first => self.inner = Inner::End,
                b']' | b',' => return Err(self.not_json("expected an item")),
                _ => {
                    self.item.clear();
                    self.item.push(b);
                    self.inner = match b {
                        b'"' => Inner::InItem {
                            depth: 0,
                            string: true,
                            escape: false,
                            scalar: false,
                        },
                        b'{' | b'[' => Inner::InItem {
                            depth: 1,
                            string: false,
                            escape: false,
                            scalar: false,
                        },
                        _ => Inner::InItem {
                            depth: 0,
                            string: false,
                            escape: false,
                            scalar: true,
                        },
                    };
                }
            },
            Inner::InItem {
                depth,
                string,
                escape,
                scalar,
            } => {
                if scalar {
                    if ws(b) || b == b',' || b == b']' {
                        self.emit(out);
                        self.inner = Inner::After;
                        return self.inner_byte(b, out);
                    }
                    self.item.push(b);
                    return Ok(());
                }
                self.item.push(b);
                let mut s = (depth, string, escape);
                if string {
                    if escape {
                        s.2 = false;
                    } else if b == b'\\' {
                        s.2 = true;
                    } else if b == b'"' {
                        s.1 = false;
                        if depth == 0 {
                            self.emit(out);
                            self.inner = Inner::After;
                            return Ok(());
                        }
                    }
                } else {
                    match b {
                        b'"' => s.1 = true,
                        b'{' | b'[' => s.0 += 1,
                        b'}' | b']' => {
                            s.0 -= 1;
                            if s.0 == 0 {
                                self.emit(out);
                                self.inner = Inner::After;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                }
                self.inner = Inner::InItem {
                    depth: s.0,
                    string: s.1,
                    escape: s.2,
                    scalar: false,
                };
            }
            Inner::After => match b {
                _ if ws(b) => {}
                b',' => self.inner = Inner::Item { first: false },
                b']' => self.inner = Inner::End,
                _ => return Err(self.not_json("expected `,` or `]`")),
            },
            Inner::End => {
                if !ws(b) {
                    return Err(self.not_json("trailing characters"));
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, out: &mut Vec<Vec<u8>>) {
        self.items += 1;
        out.push(std::mem::take(&mut self.item));
    }

    /// The content string ended: the array must be complete.
    fn content_end(&mut self) -> Result<(), ReadError> {
        if let Inner::InItem {
            depth: 0,
            scalar: true,
            ..
        } = self.inner
        {
            return Err(self.not_json("unexpected end"));
        }
        match self.inner {
            Inner::End => Ok(()),
            Inner::Start | Inner::NotArray => {
                let text = std::mem::take(&mut self.not_array);
                Err(
                    match serde_json::from_slice::<serde::de::IgnoredAny>(&text) {
                        Ok(_) => self.not_array(),
                        Err(e) => {
                            ReadError::Invalid(format!("Import failed: content is not JSON: {e}"))
                        }
                    },
                )
            }
            _ => Err(self.not_json("unexpected end")),
        }
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;
    use serde_json::json;

    /// Reads a whole body fed in chunks of `step` bytes.
    fn read(body: &[u8], step: usize) -> Result<Vec<Value>, ReadError> {
        let mut r = ImportReader::new();
        let mut items = Vec::new();
        let mut out = Vec::new();
        for chunk in body.chunks(step.max(1)) {
            r.feed(chunk, &mut out)?;
            items.append(&mut out);
        }
        r.finish(&mut out)?;
        Ok(items
            .iter()
            .map(|i| serde_json::from_slice(i).expect("an item is JSON"))
            .collect())
    }

    fn body(content: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"content": content.to_string()})).unwrap()
    }

    #[test]
    fn items_come_out_whole_whatever_the_chunking() {
        let arr = json!([
            {"type": "txt2img", "params": {"prompt": "a \"quoted\" [bracket] {brace} \\ é 😀 \u{1}", "steps": 2}},
            [1, [2, {"x": "]"}]],
            "a string, with a comma]",
            12.5e3,
            true,
            null,
            {}
        ]);
        let want: Vec<Value> = arr.as_array().unwrap().clone();
        let b = body(&arr);
        for step in [1, 2, 3, 7, 64, b.len()] {
            assert_eq!(read(&b, step).unwrap(), want, "chunks of {step}");
        }
        // Other keys are skipped, before or after, whatever their shape.
        let b =
            br#"{"x": {"content": "no"}, "y": [1, "]"], "z": -1.5, "content": "[1]", "w": "\"}"}"#;
        assert_eq!(read(b, 1).unwrap(), vec![json!(1)]);
        let b = br#"{"cont\u0065nt": "[2]"}"#;
        assert_eq!(read(b, 1).unwrap(), vec![json!(2)]);
    }

    #[test]
    fn escapes_decode_as_serde_does() {
        let raw = br#"{"content": "[\"\u00e9\ud83d\ude00\\n\\t\/\\\\\\\"\",\n\t1]"}"#;
        let want: Value = serde_json::from_str(
            serde_json::from_slice::<Value>(raw).unwrap()["content"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(want, json!(["é😀\n\t/\\\"", 1]));
        for step in [1, 2, 5] {
            assert_eq!(read(raw, step).unwrap(), want.as_array().unwrap().clone());
        }
    }

    #[test]
    fn wrong_bodies_are_told_apart() {
        let invalid = |b: &[u8]| matches!(read(b, 3), Err(ReadError::Invalid(_)));
        let malformed = |b: &[u8]| matches!(read(b, 3), Err(ReadError::Malformed(_)));
        assert!(invalid(br#"{"content": "{\"a\": 1}"}"#), "not an array");
        assert_eq!(
            read(br#"{"content": "{\"a\": 1}"}"#, 2).unwrap_err(),
            ReadError::Invalid("Import failed: content is not a JSON array".into())
        );
        assert_eq!(
            read(br#"{"content": "nope"}"#, 2).unwrap_err(),
            ReadError::Invalid(
                "Import failed: content is not JSON: expected ident at line 1 column 2".into()
            )
        );
        assert!(invalid(br#"{"content": "nope"}"#), "not JSON");
        assert!(invalid(br#"{"content": "[1 2]"}"#), "missing comma");
        assert!(invalid(br#"{"content": "[1,]"}"#), "trailing comma");
        assert!(invalid(br#"{"content": "[{\"a\": 1}"}"#), "unclosed array");
        assert!(invalid(br#"{"content": ""}"#), "empty");
        assert!(invalid(br#"{"content": [1]}"#), "content not a string");
        assert!(invalid(br#"{"other": 1}"#), "no content");
        assert!(invalid(br#"[1]"#), "not an object");
        assert!(
            invalid(br#"{"content": "[]", "content": "[]"}"#),
            "duplicate"
        );
        assert!(malformed(br#"{"content": "[]""#), "unclosed object");
        assert!(malformed(br#"{"content": "[]"} x"#), "trailing");
        assert!(malformed(br#"{"content": "\q"}"#), "bad escape");
        assert!(malformed(br#"{"content": "\ud800"}"#), "lone surrogate");
        assert!(
            malformed(b"{\"content\": \"[\x01]\"}"),
            "raw control character"
        );
        assert_eq!(
            read(br#"{"content": " [ ] "}"#, 1).unwrap(),
            Vec::<Value>::new()
        );
    }
}
