//! Arbitrary bytes, in arbitrary chunks, through nsqd's side (`server::CommandDecoder`).
//!
//! Input layout: `[flags, body cap, chunk length, stream...]`. The parser must never panic,
//! never consume more than it was given, and keep returning its first error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nsq_proto::server::CommandDecoder;

fuzz_target!(|data: &[u8]| {
    let [flags, cap, chunk, stream @ ..] = data else {
        return;
    };
    let max_body_size = match flags >> 1 & 3 {
        0 => u32::from(*cap),
        1 => u32::from(*cap) << 12,
        2 => 5 * 1024 * 1024,
        _ => u32::MAX,
    };
    let mut decoder = if flags & 1 == 0 {
        CommandDecoder::new(max_body_size)
    } else {
        CommandDecoder::after_magic(max_body_size)
    };
    let chunk = usize::from(*chunk).max(1);
    let mut buf = BytesMut::new();
    let mut given = 0usize;
    let mut consumed = 0usize;
    let mut first_error = None;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        given += piece.len();
        loop {
            let before = buf.len();
            let result = decoder.decode(&mut buf);
            assert!(buf.len() <= before);
            consumed += before - buf.len();
            assert!(consumed <= given);
            match (&first_error, result) {
                (Some(first), Err(err)) => {
                    assert_eq!(&err, first, "errors are sticky");
                    assert_eq!(buf.len(), before);
                    break;
                }
                (Some(first), Ok(cmd)) => panic!("{cmd:?} after {first:?}"),
                (None, Err(err)) => first_error = Some(err),
                (None, Ok(Some(_))) => assert!(buf.len() < before, "a command consumes bytes"),
                (None, Ok(None)) => break,
            }
        }
    }
    assert_eq!(consumed + buf.len(), given);
});
