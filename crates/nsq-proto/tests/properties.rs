//! Property tests of the codec: chunking invariance, command round trips, the name rule, and the
//! decoder's behaviour on arbitrary input.

use bytes::BytesMut;
use nsq_proto::{Channel, DecodeError, Frame, FrameDecoder, READ_AHEAD, Topic, is_valid_name};
use proptest::prelude::*;

/// Splits `bytes` at the given points (taken modulo its length); every byte lands in one chunk.
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| if bytes.is_empty() { 0 } else { c % bytes.len() })
        .collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

// (a) chunking invariance

#[cfg(feature = "server")]
mod chunking {
    use bytes::Bytes;
    use nsq_proto::{Message, MessageId, Response, ServerError, server};

    use super::*;

    /// A code nsqd sends, or an unknown one of the same shape.
    fn error_code() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "E_BAD_PROTOCOL",
                "E_INVALID",
                "E_BAD_BODY",
                "E_IDENTIFY_FAILED",
                "E_AUTH_DISABLED",
                "E_AUTH_FAILED",
                "E_UNAUTHORIZED",
                "E_AUTH_FIRST",
                "E_AUTH_ERROR",
                "E_BAD_TOPIC",
                "E_BAD_CHANNEL",
                "E_BAD_MESSAGE",
                "E_PUB_FAILED",
                "E_MPUB_FAILED",
                "E_DPUB_FAILED",
                "E_SUB_FAILED",
                "E_FIN_FAILED",
                "E_REQ_FAILED",
                "E_TOUCH_FAILED",
            ])
            .prop_map(str::to_owned),
            "E_[A-Z_]{0,20}",
            "[^ ]{0,12}",
        ]
    }

    /// Any frame nsqd could put on the wire, as the decoder should return it.
    fn frame() -> impl Strategy<Value = Frame> {
        let response = prop_oneof![
            Just(Response::Ok),
            Just(Response::Heartbeat),
            Just(Response::CloseWait),
            prop::sample::select(vec!["OK", "_heartbeat_", "CLOSE_WAIT", "OKAY", "", "{}"])
                .prop_map(|p| Response::parse(Bytes::from_static(p.as_bytes()))),
            prop::collection::vec(any::<u8>(), 0..300)
                .prop_map(|payload| Response::parse(Bytes::from(payload))),
        ];
        let error = prop_oneof![
            (error_code(), ".{0,80}").prop_map(|(code, text)| {
                let parsed = nsq_proto::ErrorCode::parse(&code);
                ServerError::new(parsed, &text)
            }),
            prop::collection::vec(any::<u8>(), 0..120)
                .prop_map(|payload| ServerError::parse(Bytes::from(payload))),
        ];
        let message = (
            any::<i64>(),
            any::<u16>(),
            any::<[u8; 16]>(),
            prop::collection::vec(any::<u8>(), 0..400),
        )
            .prop_map(|(timestamp, attempts, id, body)| Message {
                timestamp,
                attempts,
                id: MessageId(id),
                body: Bytes::from(body),
            });
        prop_oneof![
            response.prop_map(Frame::Response),
            error.prop_map(Frame::Error),
            message.prop_map(Frame::Message),
        ]
    }

    /// Feeds `chunks` in order and decodes everything that becomes complete.
    fn decode_chunked<'a>(
        decoder: &mut FrameDecoder,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Frame>, BytesMut) {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
                frames.push(frame);
            }
        }
        (frames, buf)
    }

    fn encode_all(frames: &[Frame]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for frame in frames {
            server::encode(&mut buf, frame);
        }
        buf.to_vec()
    }

    fn max_frame_size(frames: &[Frame]) -> u32 {
        let mut one = BytesMut::new();
        frames
            .iter()
            .map(|f| {
                one.clear();
                server::encode(&mut one, f);
                one.len() as u32 - 4
            })
            .max()
            .unwrap_or(4)
    }

    proptest! {
        /// Frames encoded by nsqd's side and cut at arbitrary points decode to the same frames,
        /// with a cap anywhere from exactly the largest frame up to the default.
        #[test]
        fn any_chunking_decodes_the_same_frames(
            frames in prop::collection::vec(frame(), 0..24),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
            slack in prop_oneof![Just(0u32), 0..64u32, Just(nsq_proto::DEFAULT_MAX_FRAME_SIZE)],
        ) {
            let bytes = encode_all(&frames);
            let max = max_frame_size(&frames).saturating_add(slack);
            let mut decoder = FrameDecoder::new(max);
            let (decoded, rest) = decode_chunked(&mut decoder, chunks(&bytes, &cuts));
            prop_assert_eq!(decoded, frames);
            prop_assert!(rest.is_empty());
            prop_assert!(decoder.error().is_none());
        }

        /// The extreme chunking: one byte at a time.
        #[test]
        fn byte_at_a_time_decodes_the_same_frames(
            frames in prop::collection::vec(frame(), 0..12),
        ) {
            let bytes = encode_all(&frames);
            let mut decoder = FrameDecoder::default();
            let (decoded, rest) =
                decode_chunked(&mut decoder, bytes.chunks(1));
            prop_assert_eq!(decoded, frames);
            prop_assert!(rest.is_empty());
        }

        /// All at once, as one read.
        #[test]
        fn one_chunk_decodes_the_same_frames(frames in prop::collection::vec(frame(), 0..24)) {
            let bytes = encode_all(&frames);
            let mut decoder = FrameDecoder::default();
            let (decoded, rest) = decode_chunked(&mut decoder, [&bytes[..]]);
            prop_assert_eq!(decoded, frames);
            prop_assert!(rest.is_empty());
        }
    }
}

// (b) command round trip

/// A name nsqd accepts, drawn from its rule, including the 64-byte limit and `#ephemeral`.
fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[.a-zA-Z0-9_-]{1,64}",
        "[.a-zA-Z0-9_-]{1,54}#ephemeral",
        "[a-z]{60,64}",
        "[a-z]{50,54}#ephemeral",
    ]
}

#[cfg(feature = "server")]
mod round_trip {
    use std::time::Duration;

    use bytes::Bytes;
    use nsq_proto::server::{ClientCommand, CommandDecoder};
    use nsq_proto::{MAGIC_V2, MessageId};

    use super::*;

    /// An owned command, from which a borrowed [`nsq_proto::Command`] is built.
    #[derive(Debug, Clone)]
    enum OwnedCommand {
        Identify(Vec<u8>),
        Auth(Vec<u8>),
        Pub(Topic, Vec<u8>),
        Mpub(Topic, Vec<Bytes>),
        Dpub(Topic, Duration, Vec<u8>),
        Nop,
        Cls,
        Sub(Topic, Channel),
        Rdy(u32),
        Fin(MessageId),
        Req(MessageId, Duration),
        Touch(MessageId),
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..300)
    }

    /// nsqd's ids are 16 hex characters; any 16 printable non-space ASCII bytes go through the
    /// line format the same way.
    fn message_id() -> impl Strategy<Value = MessageId> {
        prop_oneof!["[0-9a-f]{16}", "[!-~]{16}"]
            .prop_map(|s| MessageId(s.as_bytes().try_into().expect("16 ASCII bytes")))
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..=3_600_000).prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_nanos),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::ZERO),
            Just(Duration::MAX),
        ]
    }

    fn command() -> impl Strategy<Value = OwnedCommand> {
        let topic = || valid_name().prop_map(|n| Topic::new(n).expect("valid by construction"));
        let channel = valid_name().prop_map(|n| Channel::new(n).expect("valid by construction"));
        prop_oneof![
            body().prop_map(OwnedCommand::Identify),
            body().prop_map(OwnedCommand::Auth),
            (topic(), body()).prop_map(|(t, b)| OwnedCommand::Pub(t, b)),
            (
                topic(),
                prop::collection::vec(body().prop_map(Bytes::from), 0..8)
            )
                .prop_map(|(t, b)| OwnedCommand::Mpub(t, b)),
            (topic(), duration(), body()).prop_map(|(t, d, b)| OwnedCommand::Dpub(t, d, b)),
            Just(OwnedCommand::Nop),
            Just(OwnedCommand::Cls),
            (topic(), channel).prop_map(|(t, c)| OwnedCommand::Sub(t, c)),
            any::<u32>().prop_map(OwnedCommand::Rdy),
            message_id().prop_map(OwnedCommand::Fin),
            (message_id(), duration()).prop_map(|(id, d)| OwnedCommand::Req(id, d)),
            message_id().prop_map(OwnedCommand::Touch),
        ]
    }

    impl OwnedCommand {
        fn as_command(&self) -> nsq_proto::Command<'_> {
            use nsq_proto::Command;
            match self {
                Self::Identify(body) => Command::Identify { body },
                Self::Auth(secret) => Command::Auth { secret },
                Self::Pub(topic, body) => Command::Pub { topic, body },
                Self::Mpub(topic, bodies) => Command::Mpub { topic, bodies },
                Self::Dpub(topic, delay, body) => Command::Dpub {
                    topic,
                    delay: *delay,
                    body,
                },
                Self::Nop => Command::Nop,
                Self::Cls => Command::Cls,
                Self::Sub(topic, channel) => Command::Sub { topic, channel },
                Self::Rdy(count) => Command::Rdy { count: *count },
                Self::Fin(id) => Command::Fin { id },
                Self::Req(id, timeout) => Command::Req {
                    id,
                    timeout: *timeout,
                },
                Self::Touch(id) => Command::Touch { id },
            }
        }
    }

    /// Whole milliseconds as sent on the wire, saturating like the encoder.
    fn wire_millis(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    /// What nsqd's side must read back for `cmd`.
    fn expected(cmd: &OwnedCommand) -> ClientCommand {
        let bytes = |b: &Vec<u8>| Bytes::copy_from_slice(b);
        match cmd {
            OwnedCommand::Identify(body) => ClientCommand::Identify { body: bytes(body) },
            OwnedCommand::Auth(secret) => ClientCommand::Auth {
                secret: bytes(secret),
            },
            OwnedCommand::Pub(topic, body) => ClientCommand::Pub {
                topic: topic.to_string(),
                body: bytes(body),
            },
            OwnedCommand::Mpub(topic, bodies) => ClientCommand::Mpub {
                topic: topic.to_string(),
                bodies: bodies.clone(),
            },
            OwnedCommand::Dpub(topic, delay, body) => ClientCommand::Dpub {
                topic: topic.to_string(),
                defer_ms: wire_millis(*delay),
                body: bytes(body),
            },
            OwnedCommand::Nop => ClientCommand::Nop,
            OwnedCommand::Cls => ClientCommand::Cls,
            OwnedCommand::Sub(topic, channel) => ClientCommand::Sub {
                topic: topic.to_string(),
                channel: channel.to_string(),
            },
            OwnedCommand::Rdy(count) => ClientCommand::Rdy {
                count: u64::from(*count),
            },
            OwnedCommand::Fin(id) => ClientCommand::Fin { id: *id },
            OwnedCommand::Req(id, timeout) => ClientCommand::Req {
                id: *id,
                timeout_ms: wire_millis(*timeout),
            },
            OwnedCommand::Touch(id) => ClientCommand::Touch { id: *id },
        }
    }

    proptest! {
        /// Each command alone: `encoded_len` is exact and nsqd's side reads it back whole.
        #[test]
        fn every_command_round_trips(cmd in command()) {
            let command = cmd.as_command();
            let mut buf = BytesMut::new();
            command.encode(&mut buf).expect("small enough for the wire");
            prop_assert_eq!(buf.len(), command.encoded_len());
            let mut decoder = CommandDecoder::after_magic(u32::MAX);
            prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(expected(&cmd))));
            prop_assert!(buf.is_empty());
        }

        /// A pipelined stream (magic, then commands) cut at arbitrary points reads back in order.
        #[test]
        fn pipelined_commands_round_trip_in_any_chunking(
            cmds in prop::collection::vec(command(), 0..16),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
        ) {
            let mut wire = BytesMut::from(&MAGIC_V2[..]);
            for cmd in &cmds {
                let before = wire.len();
                let command = cmd.as_command();
                command.encode(&mut wire).expect("small enough for the wire");
                prop_assert_eq!(wire.len() - before, command.encoded_len());
            }
            let mut decoder = CommandDecoder::new(u32::MAX);
            let mut buf = BytesMut::new();
            let mut parsed = Vec::new();
            for chunk in chunks(&wire, &cuts) {
                buf.extend_from_slice(chunk);
                while let Some(cmd) = decoder.decode(&mut buf).expect("valid stream") {
                    parsed.push(cmd);
                }
            }
            let mut want = vec![ClientCommand::Magic];
            want.extend(cmds.iter().map(expected));
            prop_assert_eq!(parsed, want);
            prop_assert!(buf.is_empty());
        }
    }
}

// (c) names

/// nsqd's rule `^[.a-zA-Z0-9_-]+(#ephemeral)?$` with a length of 1..=64 bytes, written as a
/// literal reading of the regex: a non-empty run of the class, then either nothing or exactly
/// `#ephemeral`.
fn nsqd_accepts(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 64 {
        return false;
    }
    let in_class =
        |b: &u8| b".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".contains(b);
    let run = bytes.iter().take_while(|b| in_class(b)).count();
    let rest = &bytes[run..];
    run >= 1 && (rest.is_empty() || rest == b"#ephemeral")
}

/// Strings around the rule: valid-looking ones, ones near the 64-byte limit, with and without
/// the suffix, with one character made invalid, and arbitrary Unicode.
fn name_candidate() -> impl Strategy<Value = String> {
    let near_limit = prop_oneof![
        (60usize..=68).prop_map(|n| "a".repeat(n)),
        (50usize..=58).prop_map(|n| format!("{}#ephemeral", "b".repeat(n))),
    ];
    let spoiled = (
        "[.a-zA-Z0-9_-]{0,66}(#ephemeral)?",
        any::<prop::sample::Index>(),
        prop::sample::select(vec![
            " ",
            ":",
            "/",
            "#",
            "\n",
            "\r",
            "\0",
            "é",
            "ß",
            "#ephemeral",
            "\u{7f}",
            "\t",
        ]),
    )
        .prop_map(|(base, at, insert)| {
            let mut base = base;
            let at = at.index(base.len() + 1);
            base.insert_str(at, insert);
            base
        });
    prop_oneof![
        "[.a-zA-Z0-9_-]{0,70}",
        "[.a-zA-Z0-9_-]{0,60}#ephemeral",
        "(#ephemeral){1,2}",
        "[.a-z#]{0,12}(ephemeral)?",
        near_limit,
        spoiled,
        any::<String>(),
        ".{0,70}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// `Topic::new`, `Channel::new` and `is_valid_name` accept exactly what nsqd accepts.
    #[test]
    fn names_follow_nsqds_rule(name in name_candidate()) {
        let want = nsqd_accepts(&name);
        prop_assert_eq!(is_valid_name(&name), want, "is_valid_name({:?})", name);
        prop_assert_eq!(Topic::new(name.as_str()).is_ok(), want, "Topic::new({:?})", name);
        prop_assert_eq!(Channel::new(name.as_str()).is_ok(), want, "Channel::new({:?})", name);
        if let Ok(topic) = Topic::new(name.as_str()) {
            prop_assert_eq!(topic.as_str(), name.as_str());
            prop_assert_eq!(topic.is_ephemeral(), name.ends_with("#ephemeral"));
        }
    }

    /// Every name drawn from the rule is accepted.
    #[test]
    fn generated_valid_names_are_accepted(name in valid_name()) {
        prop_assert!(nsqd_accepts(&name));
        prop_assert!(Topic::new(name.as_str()).is_ok());
    }
}

#[test]
fn reference_predicate_matches_the_spec_examples() {
    for ok in [
        "test",
        "test-with_period.",
        "test#ephemeral",
        ".",
        "..",
        &"a".repeat(64),
        &format!("{}#ephemeral", "a".repeat(54)),
    ] {
        assert!(nsqd_accepts(ok), "{ok:?}");
    }
    for bad in [
        "",
        "a b",
        "a:b",
        "a/b",
        "test:ephemeral",
        "#ephemeral",
        "a#ephemeral#ephemeral",
        &"a".repeat(65),
        &format!("{}#ephemeral", "a".repeat(55)),
    ] {
        assert!(!nsqd_accepts(bad), "{bad:?}");
    }
}

// (d) arbitrary input

/// Bytes that are partly well-formed frames, partly noise, so the decoder gets past the header.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        // A plausible header: small size, type in or near 0..=2.
        (0u32..600, -1i32..4).prop_map(|(size, ty)| {
            let mut v = size.to_be_bytes().to_vec();
            v.extend_from_slice(&ty.to_be_bytes());
            v
        }),
        prop::collection::vec(any::<u8>(), 0..700),
        Just(b"HTTP/1.1 400 Bad Request\r\n".to_vec()),
        Just(b"\x00\x00\x00\x06\x00\x00\x00\x00OK".to_vec()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// Checks the decoder's contract on one chunked input, starting from a buffer of `capacity`.
fn check_decoder_invariants(max_frame_size: u32, capacity: usize, data: &[u8], cuts: &[usize]) {
    let mut decoder = FrameDecoder::new(max_frame_size);
    let mut buf = BytesMut::with_capacity(capacity);
    let mut given = 0usize;
    let mut consumed = 0usize;
    let mut first_error: Option<DecodeError> = None;
    // A partial frame grows the buffer to its size, or to the read-ahead size if larger.
    let cap_bound = (max_frame_size as usize + 8).max(READ_AHEAD);
    for chunk in chunks(data, cuts) {
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// On arbitrary bytes in arbitrary chunks the decoder never panics, consumes at most what
    /// it was given, reserves no more than its cap, and its first error is final.
    #[test]
    fn arbitrary_input_keeps_the_contract(
        data in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        max_frame_size in prop_oneof![0u32..40, 0u32..1200, Just(u32::MAX), any::<u32>()],
        capacity in prop_oneof![Just(0usize), 0usize..1500],
    ) {
        check_decoder_invariants(max_frame_size, capacity, &data, &cuts);
    }
}

/// A hostile size field never makes the decoder reserve more than its cap, whatever the buffer
/// already holds.
#[test]
fn reservation_is_capped_exactly() {
    for max in [4u32, 5, 30, 100, 1000, 4096] {
        for cap in [0usize, 8, 16, 64, 200, 1000, 3000, 10_000] {
            for size in [4u32, 5, max.saturating_sub(1).max(4), max] {
                let mut buf = BytesMut::with_capacity(cap);
                buf.extend_from_slice(&size.to_be_bytes());
                buf.extend_from_slice(&0i32.to_be_bytes());
                let cap_before = buf.capacity();
                let mut decoder = FrameDecoder::new(max);
                let _ = decoder.decode(&mut buf);
                assert!(
                    buf.capacity() <= cap_before.max(max as usize + 8).max(READ_AHEAD),
                    "max {max}, cap {cap}, size {size}: capacity {}",
                    buf.capacity()
                );
            }
        }
    }
}
