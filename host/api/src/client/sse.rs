//! An incremental Server-Sent Events parser (the host's `/events` stream is read with a plain
//! request so the `Authorization` and `Last-Event-ID` headers can be sent).

/// One dispatched SSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// `event:` name (`message` when absent).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen so far (carried over as the spec says).
    pub id: Option<String>,
    /// Whether this message had an `id:` line of its own (else `id` is carried over).
    pub own_id: bool,
}

/// Feed it chunks of bytes or text; it returns the complete messages.
#[derive(Debug, Default, Clone)]
pub struct SseParser {
    buf: String,
    /// Bytes of a UTF-8 sequence split between chunks.
    partial: Vec<u8>,
    event: String,
    data: Vec<String>,
    last_id: Option<String>,
    own_id: bool,
    comments: u64,
}

impl SseParser {
    /// A fresh parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `id:` seen (for `Last-Event-ID` on reconnect).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// How many comment lines (`: heartbeat`) were read so far.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Adds a chunk of bytes (a UTF-8 sequence may be split between chunks) and returns every
    /// message it completes.
    pub fn feed_bytes(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.partial.extend_from_slice(chunk);
        let bytes = std::mem::take(&mut self.partial);
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_owned(),
            Err(e) if e.error_len().is_none() => {
                // An incomplete sequence at the end: keep it for the next chunk.
                let (ok, rest) = bytes.split_at(e.valid_up_to());
                self.partial = rest.to_vec();
                String::from_utf8_lossy(ok).into_owned()
            }
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        self.feed(&text)
    }

    /// Adds a chunk and returns every message it completes.
    pub fn feed(&mut self, chunk: &str) -> Vec<SseMessage> {
        self.buf.push_str(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.find(['\n', '\r']) {
            let line: String = self.buf[..pos].to_owned();
            let mut skip = 1;
            if self.buf[pos..].starts_with("\r\n") {
                skip = 2;
            } else if self.buf[pos..].starts_with('\r') && pos + 1 == self.buf.len() {
                // A lone \r at the end might be half of \r\n: wait for more.
                break;
            }
            self.buf.drain(..pos + skip);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(SseMessage {
                        event: if self.event.is_empty() {
                            "message".into()
                        } else {
                            std::mem::take(&mut self.event)
                        },
                        data: self.data.join("\n"),
                        id: self.last_id.clone(),
                        own_id: self.own_id,
                    });
                }
                self.own_id = false;
                self.data.clear();
                self.event.clear();
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = match line.find(':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                }
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.event = value.to_owned(),
                "data" => self.data.push(value.to_owned()),
                "id" if !value.contains('\0') => {
                    self.last_id = Some(value.to_owned());
                    self.own_id = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_ids_and_comments() {
        let mut p = SseParser::new();
        assert!(p.feed(": heartbeat\n\nid: 7\nevent: que").is_empty());
        assert_eq!(p.comments(), 1);
        let m = p.feed("ue\ndata: {\"paused\":true,\ndata: \"x\":1}\r\n\r\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].event, "queue");
        assert_eq!(m[0].data, "{\"paused\":true,\n\"x\":1}");
        assert_eq!(m[0].id.as_deref(), Some("7"));
        assert!(m[0].own_id);
        let m = p.feed("data: plain\n\nevent: task\ndata:a\n\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].event, "message");
        assert_eq!(m[0].id.as_deref(), Some("7"));
        assert!(!m[0].own_id);
        assert_eq!(m[1].data, "a");
        assert_eq!(p.last_id(), Some("7"));
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let mut p = SseParser::new();
        assert!(p.feed("event: x\n\n").is_empty());
        assert_eq!(p.feed("data: y\n\n")[0].event, "message");
    }

    #[test]
    fn utf8_split_between_chunks_is_kept_whole() {
        let mut p = SseParser::new();
        let bytes = "data: caf\u{e9} \u{1f600}\n\n".as_bytes();
        let mut out = Vec::new();
        for b in bytes {
            out.extend(p.feed_bytes(std::slice::from_ref(b)));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "caf\u{e9} \u{1f600}");
    }
}
