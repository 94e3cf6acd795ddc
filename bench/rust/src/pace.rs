//! `nsq-bench pace`: the publisher of the consumer cases' latency phase. It publishes `--n`
//! messages at `--rate` per second, in turn to each nsqd of `--addrs`, one PUB at a time, each
//! body starting with `t=<unix nanoseconds>;`: the moment just before the PUB was written. The
//! consumer clients (`nsq-bench consume`, the go-nsq client) run it once their throughput phase
//! is over and record, for each such message, the time from that moment to their handler.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use nsq_proto::{Command, Topic};

use crate::flags::Flags;
use crate::raw::{Connection, encode};

/// What starts the body of every message the pacer publishes.
const PREFIX: &[u8] = b"t=";

/// Runs the pacer with its command-line flags.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut flags = Flags::parse(args, &[])?;
    let addrs: Vec<String> = flags
        .string("addrs")
        .unwrap_or_else(|| "127.0.0.1:4150".to_owned())
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let topic = Topic::new(flags.get("topic", "bench".to_owned())?).map_err(|e| e.to_string())?;
    let n: u64 = flags.get("n", 2_000)?;
    let rate: f64 = flags.get("rate", 1_000.0)?;
    let size: usize = flags.get("size", 100)?;
    flags.finish()?;
    if addrs.is_empty() || rate.is_nan() || rate <= 0.0 {
        return Err("--addrs must name an address and --rate be positive".into());
    }

    let mut conns = addrs
        .iter()
        .map(|addr| Connection::open(addr))
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = Vec::with_capacity(size.max(32));
    let mut out = BytesMut::new();
    let started = Instant::now();
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        stamp(&mut body, SystemTime::now(), size);
        out.clear();
        encode(
            Command::Pub {
                topic: &topic,
                body: &body,
            },
            &mut out,
        )?;
        let conn = &mut conns[i as usize % addrs.len()];
        conn.write(&out)?;
        conn.answer()?
            .map_err(|err| format!("nsqd refused a paced message: {err}"))?;
    }
    Ok(())
}

/// Writes into `body` the stamp of `at`, padded with `x` to `size` bytes (longer when the
/// stamp does not fit).
pub(crate) fn stamp(body: &mut Vec<u8>, at: SystemTime, size: usize) {
    let nanos = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    body.clear();
    body.extend_from_slice(PREFIX);
    body.extend_from_slice(nanos.to_string().as_bytes());
    body.push(b';');
    if body.len() < size {
        body.resize(size, b'x');
    }
}

/// The moment stamped in `body` by the pacer; `None` for any other body.
pub(crate) fn stamped_at(body: &[u8]) -> Option<SystemTime> {
    let rest = body.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|&b| b == b';')?;
    let nanos: u64 = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_fill_the_size() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_795_254_230_123_456_789);
        let mut body = Vec::new();
        stamp(&mut body, at, 100);
        assert_eq!(body.len(), 100);
        assert!(body.starts_with(b"t=1795254230123456789;xx"));
        assert_eq!(stamped_at(&body), Some(at));
        stamp(&mut body, at, 4);
        assert_eq!(stamped_at(&body), Some(at));
        assert_eq!(stamped_at(&[b'x'; 100]), None);
        assert_eq!(stamped_at(b"t=12"), None);
        assert_eq!(stamped_at(b"t=abc;"), None);
    }
}
