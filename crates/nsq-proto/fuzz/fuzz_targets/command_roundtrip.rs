//! Commands built from the fuzz input are encoded, then parsed by nsqd's side: the bytes must be
//! exactly `encoded_len()` long and read back as the same commands, in order.
#![no_main]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use nsq_proto::server::{ClientCommand, CommandDecoder};
use nsq_proto::{Channel, Command, MAGIC_V2, MessageId, Topic};

/// Hands out the input a piece at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| n << 8 | u64::from(self.byte()))
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = usize::from(self.byte()) * 2;
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken.to_vec()
    }

    /// A name nsqd accepts: 1 to 64 characters of its alphabet, maybe `#ephemeral`.
    fn name(&mut self) -> String {
        const ALPHABET: &[u8] =
            b".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
        let spec = self.byte();
        let ephemeral = spec & 0x80 != 0;
        let max = if ephemeral { 54 } else { 64 };
        let len = 1 + usize::from(spec & 0x7f) % max;
        let mut name: String = (0..len)
            .map(|_| char::from(ALPHABET[usize::from(self.byte()) % ALPHABET.len()]))
            .collect();
        if ephemeral {
            name.push_str("#ephemeral");
        }
        name
    }

    fn id(&mut self) -> MessageId {
        // nsqd's ids are hex; any printable non-space ASCII goes through the line the same way.
        MessageId(std::array::from_fn(|_| b'!' + self.byte() % 94))
    }

    fn duration(&mut self) -> Duration {
        match self.byte() % 3 {
            0 => Duration::from_millis(self.u64() % 3_600_001),
            1 => Duration::from_nanos(self.u64()),
            _ => Duration::new(self.u64(), u32::from(self.byte()) * 3_921_568),
        }
    }
}

enum Owned {
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

impl Owned {
    fn read(input: &mut Input<'_>) -> Self {
        let topic = |input: &mut Input<'_>| Topic::new(input.name()).expect("valid name");
        match input.byte() % 12 {
            0 => Self::Identify(input.bytes()),
            1 => Self::Auth(input.bytes()),
            2 => Self::Pub(topic(input), input.bytes()),
            3 => {
                let topic = topic(input);
                let count = input.byte() % 8;
                Self::Mpub(topic, (0..count).map(|_| input.bytes().into()).collect())
            }
            4 => Self::Dpub(topic(input), input.duration(), input.bytes()),
            5 => Self::Nop,
            6 => Self::Cls,
            7 => Self::Sub(
                topic(input),
                Channel::new(input.name()).expect("valid name"),
            ),
            8 => Self::Rdy(input.u64() as u32),
            9 => Self::Fin(input.id()),
            10 => Self::Req(input.id(), input.duration()),
            _ => Self::Touch(input.id()),
        }
    }

    fn command(&self) -> Command<'_> {
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

    fn expected(&self) -> ClientCommand {
        let millis = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let bytes = |b: &Vec<u8>| Bytes::copy_from_slice(b);
        match self {
            Self::Identify(body) => ClientCommand::Identify { body: bytes(body) },
            Self::Auth(secret) => ClientCommand::Auth {
                secret: bytes(secret),
            },
            Self::Pub(topic, body) => ClientCommand::Pub {
                topic: topic.to_string(),
                body: bytes(body),
            },
            Self::Mpub(topic, bodies) => ClientCommand::Mpub {
                topic: topic.to_string(),
                bodies: bodies.clone(),
            },
            Self::Dpub(topic, delay, body) => ClientCommand::Dpub {
                topic: topic.to_string(),
                defer_ms: millis(delay),
                body: bytes(body),
            },
            Self::Nop => ClientCommand::Nop,
            Self::Cls => ClientCommand::Cls,
            Self::Sub(topic, channel) => ClientCommand::Sub {
                topic: topic.to_string(),
                channel: channel.to_string(),
            },
            Self::Rdy(count) => ClientCommand::Rdy {
                count: u64::from(*count),
            },
            Self::Fin(id) => ClientCommand::Fin { id: *id },
            Self::Req(id, timeout) => ClientCommand::Req {
                id: *id,
                timeout_ms: millis(timeout),
            },
            Self::Touch(id) => ClientCommand::Touch { id: *id },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let chunk = usize::from(input.byte()).max(1);
    let mut commands = Vec::new();
    while !input.is_empty() && commands.len() < 64 {
        commands.push(Owned::read(&mut input));
    }

    let mut wire = BytesMut::from(&MAGIC_V2[..]);
    for owned in &commands {
        let command = owned.command();
        let before = wire.len();
        command
            .encode(&mut wire)
            .expect("small enough for the wire");
        assert_eq!(wire.len() - before, command.encoded_len(), "{command:?}");
    }

    let mut decoder = CommandDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut parsed = Vec::new();
    for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(cmd) = decoder.decode(&mut buf).expect("valid stream") {
            parsed.push(cmd);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(parsed.first(), Some(&ClientCommand::Magic));
    let expected: Vec<ClientCommand> = commands.iter().map(Owned::expected).collect();
    assert_eq!(parsed[1..], expected[..]);
});
