//! Arbitrary bytes, in arbitrary chunks, through `FrameDecoder` with an arbitrary cap.
//!
//! Input layout: `[cap selector, a, b, initial capacity, chunk count n, n chunk lengths, stream...]`.
//! The decoder must never panic, never consume more than it was given, never grow the buffer
//! beyond max(its capacity before the call, cap + 8), and keep returning its first error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nsq_proto::{DEFAULT_MAX_FRAME_SIZE, Frame, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let mut input = data.iter().copied();
    let mut next = || input.next().unwrap_or(0);
    let (selector, a, b) = (next(), next(), next());
    // Caps stay at realistic sizes: with a cap of gigabytes, reserving a frame the cap allows is
    // correct behaviour but would exhaust the fuzzer's memory limit.
    let max_frame_size = match selector % 4 {
        0 => u32::from(a),
        1 => u32::from(u16::from_be_bytes([a, b])),
        2 => DEFAULT_MAX_FRAME_SIZE,
        _ => u32::from(u16::from_be_bytes([a, b])) << 4,
    };
    let capacity = usize::from(next()) * 16;
    let chunk_count = usize::from(next() % 16);
    let chunk_lens: Vec<usize> = (0..chunk_count).map(|_| usize::from(next()) + 1).collect();
    let header = 5 + chunk_count;
    let stream = data.get(header..).unwrap_or_default();

    let mut decoder = FrameDecoder::new(max_frame_size);
    let mut buf = BytesMut::with_capacity(capacity);
    let cap_bound = max_frame_size as usize + 8;
    let mut given = 0usize;
    let mut consumed = 0usize;
    let mut first_error = None;
    let mut rest = stream;
    let mut lens = chunk_lens.iter().cycle();
    while !rest.is_empty() {
        let len = lens.next().map_or(rest.len(), |&l| l.min(rest.len()));
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        buf.extend_from_slice(chunk);
        given += chunk.len();
        loop {
            let len_before = buf.len();
            let cap_before = buf.capacity();
            let result = decoder.decode(&mut buf);
            assert!(buf.len() <= len_before, "the buffer grew");
            consumed += len_before - buf.len();
            assert!(consumed <= given, "consumed {consumed} of {given}");
            assert!(
                buf.capacity() <= cap_before.max(cap_bound),
                "capacity {} > max({cap_before}, {cap_bound})",
                buf.capacity()
            );
            match (&first_error, result) {
                (Some(first), Err(err)) => {
                    assert_eq!(&err, first, "errors are sticky");
                    assert_eq!(buf.len(), len_before, "a failed decoder consumes nothing");
                    break;
                }
                (Some(first), Ok(frame)) => panic!("{frame:?} after {first:?}"),
                (None, Err(err)) => {
                    assert_eq!(decoder.error(), Some(&err));
                    first_error = Some(err);
                }
                (None, Ok(Some(frame))) => {
                    if let Frame::Message(msg) = &frame {
                        assert!(msg.body.len() + 30 <= max_frame_size as usize);
                    }
                }
                (None, Ok(None)) => break,
            }
        }
    }
    assert_eq!(consumed + buf.len(), given);
});
