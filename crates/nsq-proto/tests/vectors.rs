//! Golden byte vectors of commands and frames, in both directions. They were worked out from the
//! wire format and checked against go-nsq's encoder and decoder and against nsqd 1.3.0; the
//! main ones are listed in docs/protocol.md ("Byte examples").
//!
//! Commands are encoded with [`Command`] and compared byte for byte; frames are decoded with
//! [`FrameDecoder`] and compared as values. With the `server` feature the reverse directions are
//! checked too: nsqd's side parses the command bytes and encodes the frames.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
#[cfg(feature = "server")]
use nsq_proto::server::{self, ClientCommand, CommandDecoder, ParseError};
use nsq_proto::{
    Channel, Command, ErrorCode, Frame, FrameDecoder, MAGIC_V2, Message, MessageId, Response,
    ServerError, Topic,
};

const ID: MessageId = MessageId(*b"0123456789abcdef");

/// Decodes a hex string; whitespace is ignored so that the bytes can be grouped by field.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            other => panic!("not a hex digit: {:?}", other as char),
        })
        .collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap()
}

/// Encodes `cmd`, checks `encoded_len`, and compares with the expected hex.
fn assert_encodes(cmd: Command<'_>, expected_hex: &str) {
    let expected = hex(expected_hex);
    let mut buf = BytesMut::new();
    cmd.encode(&mut buf).unwrap();
    assert_eq!(
        &buf[..],
        &expected[..],
        "{cmd:?}: got {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(cmd.encoded_len(), expected.len(), "encoded_len of {cmd:?}");
}

/// Parses the bytes as nsqd would and expects exactly one command, consuming everything.
#[cfg(feature = "server")]
fn assert_parses(expected_hex: &str, expected: ClientCommand) {
    let mut buf = BytesMut::from(&hex(expected_hex)[..]);
    let mut decoder = CommandDecoder::after_magic(u32::MAX);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(expected)));
    assert!(buf.is_empty(), "left over: {buf:?}");
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

/// Decodes the bytes and expects exactly one frame, consuming everything.
fn decode_one(frame_hex: &str) -> Frame {
    let mut buf = BytesMut::from(&hex(frame_hex)[..]);
    let mut decoder = FrameDecoder::default();
    let frame = decoder.decode(&mut buf).unwrap().expect("a complete frame");
    assert!(buf.is_empty(), "left over: {buf:?}");
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    frame
}

/// Encodes `frame` with nsqd's side, both through the generic and the specific encoder.
#[cfg(feature = "server")]
fn assert_server_encodes(frame: &Frame, frame_hex: &str) {
    let expected = hex(frame_hex);
    let mut generic = BytesMut::new();
    server::encode(&mut generic, frame);
    assert_eq!(&generic[..], &expected[..], "server::encode({frame:?})");
    let mut specific = BytesMut::new();
    match frame {
        Frame::Response(response) => server::encode_response(&mut specific, response.payload()),
        Frame::Error(error) => server::encode_error(&mut specific, error),
        Frame::Message(message) => server::encode_message(&mut specific, message),
    }
    assert_eq!(
        &specific[..],
        &expected[..],
        "specific encoder for {frame:?}"
    );
}

// Commands

#[test]
fn magic() {
    assert_eq!(&MAGIC_V2[..], &hex("20205632")[..]);
}

#[cfg(feature = "server")]
#[test]
fn magic_is_accepted_and_another_is_refused() {
    let mut buf = BytesMut::from(&hex("20205632")[..]);
    let mut decoder = CommandDecoder::new(1024);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(ClientCommand::Magic)));
    assert!(buf.is_empty());
    let mut old = BytesMut::from(&b"  V1"[..]);
    assert!(CommandDecoder::new(1024).decode(&mut old).is_err());
}

const PUB_HEX: &str = "50554220746573740a0000000568656c6c6f";

#[test]
fn pub_hello() {
    let topic = topic("test");
    assert_encodes(
        Command::Pub {
            topic: &topic,
            body: b"hello",
        },
        PUB_HEX,
    );
    assert_eq!(hex(PUB_HEX).len(), 18);
}

#[cfg(feature = "server")]
#[test]
fn pub_hello_parses() {
    assert_parses(
        PUB_HEX,
        ClientCommand::Pub {
            topic: "test".into(),
            body: Bytes::from_static(b"hello"),
        },
    );
}

const MPUB_HEX: &str = "4d50554220746573740a0000000f000000020000000161000000026263";

#[test]
fn mpub_a_bc() {
    let topic = topic("test");
    let bodies = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
    assert_encodes(
        Command::Mpub {
            topic: &topic,
            bodies: &bodies,
        },
        MPUB_HEX,
    );
    assert_eq!(hex(MPUB_HEX).len(), 29);
}

#[cfg(feature = "server")]
#[test]
fn mpub_a_bc_parses() {
    assert_parses(
        MPUB_HEX,
        ClientCommand::Mpub {
            topic: "test".into(),
            bodies: vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
        },
    );
}

const DPUB_HEX: &str = "44505542207465737420313530300a0000000178";

#[test]
fn dpub_1500ms() {
    let topic = topic("test");
    assert_encodes(
        Command::Dpub {
            topic: &topic,
            delay: Duration::from_millis(1500),
            body: b"x",
        },
        DPUB_HEX,
    );
    // Sub-millisecond parts are truncated, as go-nsq does.
    assert_encodes(
        Command::Dpub {
            topic: &topic,
            delay: Duration::from_micros(1_500_999),
            body: b"x",
        },
        DPUB_HEX,
    );
    assert_eq!(hex(DPUB_HEX).len(), 20);
}

#[cfg(feature = "server")]
#[test]
fn dpub_1500ms_parses() {
    assert_parses(
        DPUB_HEX,
        ClientCommand::Dpub {
            topic: "test".into(),
            defer_ms: 1500,
            body: Bytes::from_static(b"x"),
        },
    );
}

const NOP_HEX: &str = "4e4f500a";

#[test]
fn nop() {
    assert_encodes(Command::Nop, NOP_HEX);
}

#[cfg(feature = "server")]
#[test]
fn nop_parses() {
    assert_parses(NOP_HEX, ClientCommand::Nop);
}

const IDENTIFY_HEX: &str =
    "4944454e544946590a0000001c7b22666561747572655f6e65676f74696174696f6e223a747275657d";
const IDENTIFY_BODY: &[u8] = br#"{"feature_negotiation":true}"#;

#[test]
fn identify_feature_negotiation() {
    assert_encodes(
        Command::Identify {
            body: IDENTIFY_BODY,
        },
        IDENTIFY_HEX,
    );
    assert_eq!(hex(IDENTIFY_HEX).len(), 41);
}

#[cfg(feature = "server")]
#[test]
fn identify_feature_negotiation_parses() {
    assert_parses(
        IDENTIFY_HEX,
        ClientCommand::Identify {
            body: Bytes::from_static(IDENTIFY_BODY),
        },
    );
}

const AUTH_HEX: &str = "415554480a00000006736563726574";

#[test]
fn auth_secret() {
    assert_encodes(Command::Auth { secret: b"secret" }, AUTH_HEX);
}

#[cfg(feature = "server")]
#[test]
fn auth_secret_parses() {
    assert_parses(
        AUTH_HEX,
        ClientCommand::Auth {
            secret: Bytes::from_static(b"secret"),
        },
    );
}

const MPUB_EMPTY_HEX: &str = "4d50554220746573740a0000000400000000";

/// The encoder can express a zero-message MPUB (nsqd refuses it; `PublishLimits` stops it earlier).
#[test]
fn mpub_zero_messages() {
    let topic = topic("test");
    assert_encodes(
        Command::Mpub {
            topic: &topic,
            bodies: &[],
        },
        MPUB_EMPTY_HEX,
    );
}

#[cfg(feature = "server")]
#[test]
fn mpub_zero_messages_parses() {
    assert_parses(
        MPUB_EMPTY_HEX,
        ClientCommand::Mpub {
            topic: "test".into(),
            bodies: vec![],
        },
    );
}

const SUB_HEX: &str = "53554220746573742063680a";

#[test]
fn sub_test_ch() {
    let topic = topic("test");
    let channel = Channel::new("ch").unwrap();
    assert_encodes(
        Command::Sub {
            topic: &topic,
            channel: &channel,
        },
        SUB_HEX,
    );
}

#[cfg(feature = "server")]
#[test]
fn sub_test_ch_parses() {
    assert_parses(
        SUB_HEX,
        ClientCommand::Sub {
            topic: "test".into(),
            channel: "ch".into(),
        },
    );
}

const RDY_HEX: &str = "52445920310a";

#[test]
fn rdy_1() {
    assert_encodes(Command::Rdy { count: 1 }, RDY_HEX);
}

#[cfg(feature = "server")]
#[test]
fn rdy_1_parses() {
    assert_parses(RDY_HEX, ClientCommand::Rdy { count: 1 });
}

const FIN_HEX: &str = "46494e20303132333435363738396162636465660a";

#[test]
fn fin() {
    assert_encodes(Command::Fin { id: &ID }, FIN_HEX);
}

#[cfg(feature = "server")]
#[test]
fn fin_parses() {
    assert_parses(FIN_HEX, ClientCommand::Fin { id: ID });
}

const REQ_HEX: &str = "524551203031323334353637383961626364656620300a";

#[test]
fn req_0() {
    assert_encodes(
        Command::Req {
            id: &ID,
            timeout: Duration::ZERO,
        },
        REQ_HEX,
    );
}

#[cfg(feature = "server")]
#[test]
fn req_0_parses() {
    assert_parses(
        REQ_HEX,
        ClientCommand::Req {
            id: ID,
            timeout_ms: 0,
        },
    );
}

const TOUCH_HEX: &str = "544f55434820303132333435363738396162636465660a";

#[test]
fn touch() {
    assert_encodes(Command::Touch { id: &ID }, TOUCH_HEX);
}

#[cfg(feature = "server")]
#[test]
fn touch_parses() {
    assert_parses(TOUCH_HEX, ClientCommand::Touch { id: ID });
}

const CLS_HEX: &str = "434c530a";

#[test]
fn cls() {
    assert_encodes(Command::Cls, CLS_HEX);
}

#[cfg(feature = "server")]
#[test]
fn cls_parses() {
    assert_parses(CLS_HEX, ClientCommand::Cls);
}

/// go-nsq's `Publish("test", nil)` writes no size field at all; nsqd then reads the next
/// command as the size. An empty body must still carry its 4-byte size of zero.
const GO_NSQ_NIL_BODY_HEX: &str = "50554220746573740a";

#[test]
fn empty_pub_is_never_the_go_nsq_nil_body_defect() {
    let topic = topic("test");
    let cmd = Command::Pub {
        topic: &topic,
        body: b"",
    };
    let mut buf = BytesMut::new();
    cmd.encode(&mut buf).unwrap();
    assert_ne!(&buf[..], &hex(GO_NSQ_NIL_BODY_HEX)[..]);
    assert_encodes(cmd, &format!("{GO_NSQ_NIL_BODY_HEX}00000000"));
}

/// What the defect does to nsqd: the line alone is not a command, it waits for a size.
#[cfg(feature = "server")]
#[test]
fn go_nsq_nil_body_leaves_nsqd_waiting_for_a_size() {
    // nsqd's default --max-msg-size.
    let mut decoder = CommandDecoder::after_magic(1_048_576);
    let mut buf = BytesMut::from(&hex(GO_NSQ_NIL_BODY_HEX)[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    // The next NOP is then read as the size: 0x4e4f500a = 1313820682.
    buf.extend_from_slice(&hex(NOP_HEX));
    assert_eq!(
        decoder.decode(&mut buf),
        Err(ParseError::InvalidBodySize {
            command: "PUB",
            size: 1_313_820_682
        })
    );
}

#[cfg(feature = "server")]
#[test]
fn all_commands_in_one_stream_parse_in_order() {
    let mut stream = hex("20205632");
    for vector in [
        PUB_HEX,
        MPUB_HEX,
        DPUB_HEX,
        NOP_HEX,
        IDENTIFY_HEX,
        AUTH_HEX,
        SUB_HEX,
        RDY_HEX,
        FIN_HEX,
        REQ_HEX,
        TOUCH_HEX,
        CLS_HEX,
    ] {
        stream.extend(hex(vector));
    }
    let mut buf = BytesMut::from(&stream[..]);
    let mut decoder = CommandDecoder::new(u32::MAX);
    let mut names = Vec::new();
    while let Some(cmd) = decoder.decode(&mut buf).unwrap() {
        names.push(
            format!("{cmd:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        names,
        [
            "Magic", "Pub", "Mpub", "Dpub", "Nop", "Identify", "Auth", "Sub", "Rdy", "Fin", "Req",
            "Touch", "Cls"
        ]
    );
    assert!(buf.is_empty());
}

// Frames

const OK_HEX: &str = "00000006000000004f4b";

#[test]
fn ok_frame() {
    assert_eq!(decode_one(OK_HEX), Frame::Response(Response::Ok));
    assert_eq!(hex(OK_HEX).len(), 10);
}

#[cfg(feature = "server")]
#[test]
fn ok_frame_encodes() {
    assert_server_encodes(&Frame::Response(Response::Ok), OK_HEX);
}

const BAD_TOPIC_SPACE_HEX: &str = "0000003100000001455f4241445f544f5049432050554220746f706963206e616d65202261206222206973206e6f742076616c6964";
const BAD_TOPIC_SPACE_TEXT: &str = r#"E_BAD_TOPIC PUB topic name "a b" is not valid"#;

/// A pure format vector: nsqd cannot produce this text (the space splits the line).
#[test]
fn error_frame_format_vector() {
    let Frame::Error(err) = decode_one(BAD_TOPIC_SPACE_HEX) else {
        panic!("expected an error frame");
    };
    assert_eq!(err.code(), &ErrorCode::BadTopic);
    assert!(err.is_fatal());
    assert_eq!(err.description(), r#"PUB topic name "a b" is not valid"#);
    assert_eq!(err.to_string(), BAD_TOPIC_SPACE_TEXT);
    assert_eq!(&err.payload()[..], BAD_TOPIC_SPACE_TEXT.as_bytes());
    assert_eq!(hex(BAD_TOPIC_SPACE_HEX).len(), 53);
}

#[cfg(feature = "server")]
#[test]
fn error_frame_format_vector_encodes() {
    let err = ServerError::new(ErrorCode::BadTopic, r#"PUB topic name "a b" is not valid"#);
    assert_server_encodes(&Frame::Error(err), BAD_TOPIC_SPACE_HEX);
}

const BAD_TOPIC_HEX: &str = "0000003100000001455f4241445f544f5049432050554220746f706963206e616d652022613a6222206973206e6f742076616c6964";
const BAD_TOPIC_TEXT: &str = r#"E_BAD_TOPIC PUB topic name "a:b" is not valid"#;

#[test]
fn error_frame_pub_bad_topic() {
    let Frame::Error(err) = decode_one(BAD_TOPIC_HEX) else {
        panic!("expected an error frame");
    };
    assert_eq!(err.code(), &ErrorCode::BadTopic);
    assert!(err.is_fatal());
    assert_eq!(err.description(), r#"PUB topic name "a:b" is not valid"#);
    assert_eq!(err.to_string(), BAD_TOPIC_TEXT);
    assert_eq!(
        err,
        ServerError::new(ErrorCode::BadTopic, r#"PUB topic name "a:b" is not valid"#)
    );
}

#[cfg(feature = "server")]
#[test]
fn error_frame_pub_bad_topic_encodes() {
    let err = ServerError::parse(Bytes::from_static(BAD_TOPIC_TEXT.as_bytes()));
    assert_server_encodes(&Frame::Error(err), BAD_TOPIC_HEX);
}

const MPUB_BAD_TOPIC_HEX: &str = "0000003e00000001455f4241445f544f50494320455f4241445f544f504943204d50554220746f706963206e616d652022613a6222206973206e6f742076616c6964";
const MPUB_BAD_TOPIC_TEXT: &str = r#"E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "a:b" is not valid"#;

#[test]
fn error_frame_mpub_doubled_code() {
    let Frame::Error(err) = decode_one(MPUB_BAD_TOPIC_HEX) else {
        panic!("expected an error frame");
    };
    assert_eq!(err.code(), &ErrorCode::BadTopic);
    assert!(err.is_fatal());
    assert_eq!(err.description(), r#"MPUB topic name "a:b" is not valid"#);
    assert_eq!(err.to_string(), MPUB_BAD_TOPIC_TEXT);
    assert_eq!(hex(MPUB_BAD_TOPIC_HEX).len(), 66);
}

#[cfg(feature = "server")]
#[test]
fn error_frame_mpub_doubled_code_encodes() {
    // nsqd builds it as the code plus a description that repeats the code.
    let err = ServerError::new(
        ErrorCode::BadTopic,
        r#"E_BAD_TOPIC MPUB topic name "a:b" is not valid"#,
    );
    assert_server_encodes(&Frame::Error(err), MPUB_BAD_TOPIC_HEX);
}

const MESSAGE_HEX: &str =
    "000000200000000200000000000000010001303132333435363738396162636465666869";

fn message_hi() -> Message {
    Message {
        timestamp: 1,
        attempts: 1,
        id: ID,
        body: Bytes::from_static(b"hi"),
    }
}

#[test]
fn message_frame() {
    assert_eq!(decode_one(MESSAGE_HEX), Frame::Message(message_hi()));
    assert_eq!(hex(MESSAGE_HEX).len(), 36);
}

#[cfg(feature = "server")]
#[test]
fn message_frame_encodes() {
    assert_server_encodes(&Frame::Message(message_hi()), MESSAGE_HEX);
}

const HEARTBEAT_HEX: &str = "0000000f000000005f6865617274626561745f";

#[test]
fn heartbeat_frame() {
    assert_eq!(
        decode_one(HEARTBEAT_HEX),
        Frame::Response(Response::Heartbeat)
    );
    assert_eq!(hex(HEARTBEAT_HEX).len(), 19);
}

#[cfg(feature = "server")]
#[test]
fn heartbeat_frame_encodes() {
    assert_server_encodes(&Frame::Response(Response::Heartbeat), HEARTBEAT_HEX);
}

const CLOSE_WAIT_HEX: &str = "0000000e00000000434c4f53455f57414954";

#[test]
fn close_wait_frame() {
    assert_eq!(
        decode_one(CLOSE_WAIT_HEX),
        Frame::Response(Response::CloseWait)
    );
    assert_eq!(hex(CLOSE_WAIT_HEX).len(), 18);
}

#[cfg(feature = "server")]
#[test]
fn close_wait_frame_encodes() {
    assert_server_encodes(&Frame::Response(Response::CloseWait), CLOSE_WAIT_HEX);
}

const BAD_PROTOCOL_HEX: &str = "0000001200000001455f4241445f50524f544f434f4c";

#[test]
fn bad_protocol_frame() {
    let Frame::Error(err) = decode_one(BAD_PROTOCOL_HEX) else {
        panic!("expected an error frame");
    };
    assert_eq!(err.code(), &ErrorCode::BadProtocol);
    assert!(err.is_fatal());
    assert_eq!(err.description(), "");
    assert_eq!(err.to_string(), "E_BAD_PROTOCOL");
    assert_eq!(hex(BAD_PROTOCOL_HEX).len(), 22);
}

#[cfg(feature = "server")]
#[test]
fn bad_protocol_frame_encodes() {
    assert_server_encodes(
        &Frame::Error(ServerError::new(ErrorCode::BadProtocol, "")),
        BAD_PROTOCOL_HEX,
    );
}

/// All frame vectors back to back, fed one byte at a time, decode to the same values.
#[test]
fn all_frames_in_one_stream_byte_by_byte() {
    let vectors = [
        OK_HEX,
        BAD_TOPIC_SPACE_HEX,
        BAD_TOPIC_HEX,
        MPUB_BAD_TOPIC_HEX,
        MESSAGE_HEX,
        HEARTBEAT_HEX,
        CLOSE_WAIT_HEX,
        BAD_PROTOCOL_HEX,
    ];
    let expected: Vec<Frame> = vectors.iter().map(|v| decode_one(v)).collect();
    let stream: Vec<u8> = vectors.iter().flat_map(|v| hex(v)).collect();
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &byte in &stream {
        buf.extend_from_slice(&[byte]);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(frames, expected);
    assert!(buf.is_empty());
}

#[test]
fn hex_helper() {
    assert_eq!(hex("00 ff\n7F"), [0x00, 0xff, 0x7f]);
    assert!(hex("").is_empty());
}
