//! What is written for each message: the raw body and a newline (nsq_tail's output), or a JSON
//! line that keeps any body intact.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nsq_consumer::Message;

use crate::args::Output;

/// Standard output is written in blocks of this size at most between flushes.
const BUFFER: usize = 256 * 1024;

/// Frames messages onto a buffered writer; nothing reaches the writer's destination before
/// [`flush`](Self::flush) (or a full buffer).
pub(crate) struct Framer<W: Write> {
    framing: Output,
    print_topic: bool,
    out: io::BufWriter<W>,
    /// The base64 of the last body, reused.
    encoded: String,
}

impl<W: Write> Framer<W> {
    pub(crate) fn new(framing: Output, print_topic: bool, out: W) -> Self {
        Self {
            framing,
            print_topic,
            out: io::BufWriter::with_capacity(BUFFER, out),
            encoded: String::new(),
        }
    }

    /// Writes `message`, read from `topic`.
    pub(crate) fn write(&mut self, topic: &str, message: &Message) -> io::Result<()> {
        if self.framing == Output::Raw {
            return self.write_raw(topic, message.body());
        }
        let fields = Fields {
            topic,
            nsqd: message.nsqd(),
            id: &message.id().to_string(),
            attempts: message.attempts(),
            timestamp: message.timestamp_nanos(),
            body: message.body(),
        };
        self.write_fields(&fields)
    }

    fn write_fields(&mut self, m: &Fields<'_>) -> io::Result<()> {
        if self.framing == Output::Raw {
            return self.write_raw(m.topic, m.body);
        }
        self.encoded.clear();
        STANDARD.encode_string(m.body, &mut self.encoded);
        self.out.write_all(b"{\"topic\":")?;
        serde_json::to_writer(&mut self.out, m.topic)?;
        self.out.write_all(b",\"nsqd\":")?;
        serde_json::to_writer(&mut self.out, m.nsqd)?;
        self.out.write_all(b",\"id\":")?;
        serde_json::to_writer(&mut self.out, m.id)?;
        writeln!(
            self.out,
            ",\"attempts\":{},\"timestamp\":{},\"body\":\"{}\"}}",
            m.attempts, m.timestamp, self.encoded
        )
    }

    /// nsq_tail's framing: `[TOPIC | ]BODY\n`.
    fn write_raw(&mut self, topic: &str, body: &[u8]) -> io::Result<()> {
        if self.print_topic {
            self.out.write_all(topic.as_bytes())?;
            self.out.write_all(b" | ")?;
        }
        self.out.write_all(body)?;
        self.out.write_all(b"\n")
    }

    /// Writes out everything framed so far.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One message's fields, as they are framed.
struct Fields<'a> {
    topic: &'a str,
    nsqd: &'a str,
    id: &'a str,
    attempts: u16,
    timestamp: i64,
    body: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(framing: Output, print_topic: bool, body: &[u8]) -> Vec<u8> {
        let mut framer = Framer::new(framing, print_topic, Vec::new());
        framer
            .write_fields(&Fields {
                topic: "t\"x",
                nsqd: "127.0.0.1:4150",
                id: "0a1b2c3d4e5f6a7b",
                attempts: 3,
                timestamp: 1_733_580_000_123_456_789,
                body,
            })
            .unwrap();
        framer.flush().unwrap();
        framer.out.into_inner().unwrap()
    }

    #[test]
    fn raw_is_the_body_and_a_newline() {
        assert_eq!(frame(Output::Raw, false, b"a\nb"), b"a\nb\n");
        assert_eq!(frame(Output::Raw, true, b"x"), b"t\"x | x\n");
    }

    #[test]
    fn a_json_line_keeps_any_body() {
        let body: Vec<u8> = (0..=255u8).chain(*b"\n\r\"\\").collect();
        let line = frame(Output::Json, false, &body);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["topic"], "t\"x");
        assert_eq!(value["nsqd"], "127.0.0.1:4150");
        assert_eq!(value["id"], "0a1b2c3d4e5f6a7b");
        assert_eq!(value["attempts"], 3);
        assert_eq!(value["timestamp"], 1_733_580_000_123_456_789_i64);
        let decoded = STANDARD.decode(value["body"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, body);
        // The same with --print-topic: JSON names the topic anyway.
        assert_eq!(frame(Output::Json, true, &body), line);
    }
}
