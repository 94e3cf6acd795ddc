//! Error frames sent by nsqd: the `E_*` code and the text (docs/protocol.md, "Errors").

use std::fmt;

use bytes::Bytes;

/// The code at the start of an nsqd error frame.
///
/// Codes this version does not know are kept in [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `E_BAD_PROTOCOL`: the magic was not `  V2`.
    BadProtocol,
    /// `E_INVALID`: unknown command, bad parameters, or a command not allowed in this state.
    Invalid,
    /// `E_BAD_BODY`: a malformed or oversized IDENTIFY, AUTH or MPUB body.
    BadBody,
    /// `E_IDENTIFY_FAILED`: feature negotiation or an upgrade failed.
    IdentifyFailed,
    /// `E_AUTH_DISABLED`: AUTH sent to an nsqd without an auth service.
    AuthDisabled,
    /// `E_AUTH_FAILED`: the auth service refused or failed.
    AuthFailed,
    /// `E_UNAUTHORIZED`: no authorisation for this command or topic.
    Unauthorized,
    /// `E_AUTH_FIRST`: AUTH is required before this command.
    AuthFirst,
    /// `E_AUTH_ERROR`: nsqd failed while handling AUTH.
    AuthError,
    /// `E_BAD_TOPIC`: invalid topic name.
    BadTopic,
    /// `E_BAD_CHANNEL`: invalid channel name.
    BadChannel,
    /// `E_BAD_MESSAGE`: a message body of invalid size.
    BadMessage,
    /// `E_PUB_FAILED`: nsqd could not store a PUB.
    PubFailed,
    /// `E_MPUB_FAILED`: nsqd could not store an MPUB.
    MpubFailed,
    /// `E_DPUB_FAILED`: nsqd could not store a DPUB.
    DpubFailed,
    /// `E_SUB_FAILED`: SUB could not be carried out.
    SubFailed,
    /// `E_FIN_FAILED`: the message to finish is not in flight (not fatal).
    FinFailed,
    /// `E_REQ_FAILED`: the message to requeue is not in flight (not fatal).
    ReqFailed,
    /// `E_TOUCH_FAILED`: the message to touch is not in flight (not fatal).
    TouchFailed,
    /// A code this version does not know, as sent.
    Other(Box<str>),
}

impl ErrorCode {
    /// Parses a code as it appears on the wire (`E_BAD_TOPIC`).
    pub fn parse(code: &str) -> Self {
        match code {
            "E_BAD_PROTOCOL" => Self::BadProtocol,
            "E_INVALID" => Self::Invalid,
            "E_BAD_BODY" => Self::BadBody,
            "E_IDENTIFY_FAILED" => Self::IdentifyFailed,
            "E_AUTH_DISABLED" => Self::AuthDisabled,
            "E_AUTH_FAILED" => Self::AuthFailed,
            "E_UNAUTHORIZED" => Self::Unauthorized,
            "E_AUTH_FIRST" => Self::AuthFirst,
            "E_AUTH_ERROR" => Self::AuthError,
            "E_BAD_TOPIC" => Self::BadTopic,
            "E_BAD_CHANNEL" => Self::BadChannel,
            "E_BAD_MESSAGE" => Self::BadMessage,
            "E_PUB_FAILED" => Self::PubFailed,
            "E_MPUB_FAILED" => Self::MpubFailed,
            "E_DPUB_FAILED" => Self::DpubFailed,
            "E_SUB_FAILED" => Self::SubFailed,
            "E_FIN_FAILED" => Self::FinFailed,
            "E_REQ_FAILED" => Self::ReqFailed,
            "E_TOUCH_FAILED" => Self::TouchFailed,
            other => Self::Other(other.into()),
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadProtocol => "E_BAD_PROTOCOL",
            Self::Invalid => "E_INVALID",
            Self::BadBody => "E_BAD_BODY",
            Self::IdentifyFailed => "E_IDENTIFY_FAILED",
            Self::AuthDisabled => "E_AUTH_DISABLED",
            Self::AuthFailed => "E_AUTH_FAILED",
            Self::Unauthorized => "E_UNAUTHORIZED",
            Self::AuthFirst => "E_AUTH_FIRST",
            Self::AuthError => "E_AUTH_ERROR",
            Self::BadTopic => "E_BAD_TOPIC",
            Self::BadChannel => "E_BAD_CHANNEL",
            Self::BadMessage => "E_BAD_MESSAGE",
            Self::PubFailed => "E_PUB_FAILED",
            Self::MpubFailed => "E_MPUB_FAILED",
            Self::DpubFailed => "E_DPUB_FAILED",
            Self::SubFailed => "E_SUB_FAILED",
            Self::FinFailed => "E_FIN_FAILED",
            Self::ReqFailed => "E_REQ_FAILED",
            Self::TouchFailed => "E_TOUCH_FAILED",
            Self::Other(code) => code,
        }
    }

    /// Whether nsqd closes the connection after sending this error.
    ///
    /// nsqd closes the connection after every error except a failed FIN, REQ or TOUCH. Unknown
    /// codes are treated as fatal, the safe assumption.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::FinFailed | Self::ReqFailed | Self::TouchFailed)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error frame from nsqd: its code and its text.
///
/// `Display` shows the payload exactly as nsqd sent it (lossily decoded as UTF-8), e.g.
/// `E_BAD_TOPIC PUB topic name "a:b" is not valid`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerError {
    code: ErrorCode,
    payload: Bytes,
}

impl ServerError {
    /// Parses an error frame's payload.
    ///
    /// The code is the text before the first space. nsqd doubles the code in MPUB's bad-topic
    /// error (`E_BAD_TOPIC E_BAD_TOPIC MPUB ...`); the code is still parsed once and
    /// [`description`](Self::description) drops the repetition.
    pub fn parse(payload: Bytes) -> Self {
        let code_end = payload
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(payload.len());
        let code = ErrorCode::parse(&String::from_utf8_lossy(&payload[..code_end]));
        Self { code, payload }
    }

    /// Builds an error as nsqd would send it: `code` and, unless empty, a space and `description`.
    pub fn new(code: ErrorCode, description: &str) -> Self {
        let mut text = code.as_str().to_owned();
        if !description.is_empty() {
            text.push(' ');
            text.push_str(description);
        }
        Self {
            code,
            payload: Bytes::from(text),
        }
    }

    /// The error code.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// Whether nsqd closes the connection after this error (see [`ErrorCode::is_fatal`]).
    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }

    /// The text after the code, without a repeated code.
    pub fn description(&self) -> String {
        let text = String::from_utf8_lossy(&self.payload);
        let code = self.code.as_str();
        let mut rest = text
            .strip_prefix(code)
            .unwrap_or(&text)
            .trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(code) {
            if after.is_empty() || after.starts_with(' ') {
                rest = after.trim_start_matches(' ');
            }
        }
        rest.to_owned()
    }

    /// The payload exactly as received.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.payload))
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("code", &self.code)
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .finish()
    }
}

impl std::error::Error for ServerError {}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 19] = [
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
    ];

    #[test]
    fn every_code_round_trips_and_only_three_are_not_fatal() {
        for text in ALL {
            let code = ErrorCode::parse(text);
            assert!(!matches!(code, ErrorCode::Other(_)), "{text} is known");
            assert_eq!(code.as_str(), text);
            let non_fatal = matches!(text, "E_FIN_FAILED" | "E_REQ_FAILED" | "E_TOUCH_FAILED");
            assert_eq!(code.is_fatal(), !non_fatal, "{text}");
        }
        let other = ErrorCode::parse("E_NEW_THING");
        assert_eq!(other, ErrorCode::Other("E_NEW_THING".into()));
        assert!(other.is_fatal());
    }

    #[test]
    fn parses_code_and_description() {
        let err = ServerError::parse(Bytes::from_static(
            b"E_BAD_TOPIC PUB topic name \"a:b\" is not valid",
        ));
        assert_eq!(err.code(), &ErrorCode::BadTopic);
        assert_eq!(err.description(), "PUB topic name \"a:b\" is not valid");
        assert_eq!(
            err.to_string(),
            "E_BAD_TOPIC PUB topic name \"a:b\" is not valid"
        );
    }

    #[test]
    fn parses_mpub_doubled_code() {
        let err = ServerError::parse(Bytes::from_static(
            b"E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"a:b\" is not valid",
        ));
        assert_eq!(err.code(), &ErrorCode::BadTopic);
        assert_eq!(err.description(), "MPUB topic name \"a:b\" is not valid");
    }

    #[test]
    fn code_without_description() {
        let err = ServerError::parse(Bytes::from_static(b"E_BAD_PROTOCOL"));
        assert_eq!(err.code(), &ErrorCode::BadProtocol);
        assert_eq!(err.description(), "");
        assert_eq!(ServerError::new(ErrorCode::BadProtocol, ""), err);
        let err = ServerError::parse(Bytes::from_static(b"E_INVALID invalid command "));
        assert_eq!(err.code(), &ErrorCode::Invalid);
        assert_eq!(err.description(), "invalid command ");
    }
}
