//! nsqd's certificate given itself as `tls_root_ca_file`, as go-nsq (Go's `crypto/x509`)
//! accepts it: a self-signed certificate, often made with `openssl req -x509` and so marked as
//! a CA, which webpki refuses as an end entity (`CaUsedAsEndEntity`).
//!
//! The chain is verified as usual first. Only when that fails and nsqd presented exactly one of
//! the certificates of the root file is the certificate taken as pinned; its name and its
//! validity period are still checked, and so are the handshake's signatures.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The chain verifier, and the certificates of the root file that are accepted as nsqd's own.
#[derive(Debug)]
pub(crate) struct ChainOrPinned {
    pub(crate) chain: Arc<WebPkiServerVerifier>,
    pub(crate) pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for ChainOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(refused) => refused,
        };
        if !self
            .pinned
            .iter()
            .any(|pinned| pinned.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        let (not_before, not_after) = validity(end_entity.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        let now = now.as_secs();
        if now < not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > not_after {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// One DER element: its tag, its content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// A certificate's validity period, as seconds since the Unix epoch: `notBefore` and
/// `notAfter` of its TBSCertificate.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    // [0] version (optional), serialNumber, signature, issuer, validity.
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        rest = element(rest)?.2;
    }
    let rest = element(rest)?.2;
    let rest = element(rest)?.2;
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (tag, not_before, rest) = element(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = element(rest)?;
    Some((not_before, time(tag, not_after)?))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as seconds since the
/// Unix epoch.
fn time(tag: u8, bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let number = |s: Option<&str>| -> Option<u64> {
        let s = s?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, rest) = match tag {
        0x17 => {
            let yy = number(text.get(..2))?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (number(text.get(..4))?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 {
        return None;
    }
    let field = |at: usize| number(rest.get(at..at + 2));
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    Some(days_since_epoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian calendar; year 1970 or later).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    // Counted from 0000-03-01, so that the leap day ends a year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_as_the_calendar_does() {
        assert_eq!(days_since_epoch(1970, 1, 1), 0);
        assert_eq!(days_since_epoch(2000, 3, 1), 11_017);
        assert_eq!(days_since_epoch(2024, 2, 29), 19_782);
        assert_eq!(time(0x17, b"700101000001Z"), Some(1));
        assert_eq!(
            time(0x18, b"20240229120000Z"),
            Some(19_782 * 86_400 + 43_200)
        );
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"7001010000Z"), None);
        assert_eq!(time(0x18, b"2024022912000+Z"), None);
    }

    #[test]
    fn the_validity_period_is_read_from_a_certificate() {
        // A minimal TBSCertificate layout: version, serial, algorithm, issuer, validity.
        let validity = [
            &[0x30, 32][..],
            &[0x17, 13],
            b"240229120000Z",
            &[0x18, 15],
            b"20991231235959Z",
        ]
        .concat();
        let tbs_body = [
            &[0xa0, 3, 2, 1, 2][..],
            &[2, 1, 7],
            &[0x30, 0],
            &[0x30, 0],
            &validity,
        ]
        .concat();
        let tbs = [&[0x30, tbs_body.len() as u8][..], &tbs_body].concat();
        let cert = [&[0x30, 0x81, tbs.len() as u8][..], &tbs].concat();
        let (not_before, not_after) = validity_of(&cert);
        assert_eq!(not_before, 19_782 * 86_400 + 43_200);
        assert_eq!(not_after, time(0x18, b"20991231235959Z").unwrap());
        assert_eq!(super::validity(&cert[..cert.len() - 1]), None);
    }

    fn validity_of(cert: &[u8]) -> (u64, u64) {
        super::validity(cert).expect("a validity period")
    }
}
