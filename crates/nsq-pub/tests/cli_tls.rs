//! nsq-pub over TLS with the options go-nsq takes: nsqd's own self-signed certificate (marked
//! as a CA, as `openssl req -x509` makes it) given as `tls_root_ca_file` is trusted, as to_nsq
//! trusts it; a certificate that is not nsqd's is refused with a message that says what to do.

mod common;

use std::path::Path;
use std::process::Command;

use nsq_test_support::{NsqTool, Nsqd, NsqdOptions, read_all};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use common::{Finished, Running, nsq_pub};

/// A self-signed certificate for `127.0.0.1`, marked as a CA; writes `<name>.pem` and
/// `<name>.key` to `dir`.
fn self_signed(dir: &Path, name: &str) {
    self_signed_with(dir, name, "127.0.0.1", false);
}

/// A self-signed certificate for `host`, marked as a CA, expired if `expired`.
fn self_signed_with(dir: &Path, name: &str, host: &str, expired: bool) {
    let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn publish(mut command: Command, nsqd: &Nsqd, topic: &str, root: &Path) -> Finished {
    command.args([
        "--topic",
        topic,
        "--nsqd-tcp-address",
        &nsqd.tcp_addr().to_string(),
        "--producer-opt",
        "tls_v1,true",
        "--producer-opt",
        &format!("tls_root_ca_file,{}", root.display()),
    ]);
    Running::spawn(&mut command, b"one\ntwo\n".to_vec()).wait()
}

#[test]
fn a_self_signed_nsqd_certificate_given_as_the_root_is_trusted_as_go_nsq_trusts_it() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "nsqd");
    self_signed(dir.path(), "stranger");
    let nsqd = Nsqd::start_with(
        NsqdOptions::new()
            .tls_cert(dir.path().join("nsqd.pem"))
            .tls_key(dir.path().join("nsqd.key")),
    );
    let root = dir.path().join("nsqd.pem");

    let go = publish(Command::new(NsqTool::ToNsq.path()), &nsqd, "go", &root);
    assert_eq!(go.code, Some(0), "to_nsq; stderr:\n{}", go.stderr);
    let rs = publish(nsq_pub(), &nsqd, "rs", &root);
    rs.assert_code(0);
    assert_eq!(read_all(&nsqd, "rs"), read_all(&nsqd, "go"));

    let refused = publish(
        nsq_pub(),
        &nsqd,
        "refused",
        &dir.path().join("stranger.pem"),
    );
    refused.assert_code(4);
    assert!(
        refused.stderr.contains("tls_root_ca_file") && !refused.stderr.contains("Other("),
        "the refusal says what to do, in words:\n{}",
        refused.stderr
    );
    assert_eq!(nsqd.topic_depth("refused"), None);
}

/// Trusting nsqd's own certificate checks the rest as strictly: one for another name, or one
/// that has expired, is refused (exit 4) with a message in words.
#[test]
fn a_pinned_certificate_must_still_name_the_host_and_be_valid() {
    let dir = tempfile::tempdir().unwrap();
    for (name, host, expired, says) in [
        (
            "other-name",
            "nsqd.example",
            false,
            "not valid for the host",
        ),
        ("expired", "127.0.0.1", true, "expired"),
    ] {
        self_signed_with(dir.path(), name, host, expired);
        let cert = dir.path().join(format!("{name}.pem"));
        let nsqd = Nsqd::start_with(
            NsqdOptions::new()
                .tls_cert(&cert)
                .tls_key(dir.path().join(format!("{name}.key"))),
        );
        let refused = publish(nsq_pub(), &nsqd, "refused", &cert);
        refused.assert_code(4);
        assert!(refused.stderr.contains(says), "{name}:\n{}", refused.stderr);
        assert_eq!(nsqd.topic_depth("refused"), None);
    }
}
