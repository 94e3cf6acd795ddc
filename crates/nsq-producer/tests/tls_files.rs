//! go-nsq's TLS options by name, with real certificate files: the certificate and its key can
//! be set in either order, since they are checked as a pair when the producer is built.
//!
//! The files come from nsq-test-support, which is not published, so this file is left out of
//! the package (see `exclude` in Cargo.toml).

use nsq_producer::{Producer, ProducerConfig};
use nsq_test_support::TestPki;

fn path(p: std::path::PathBuf) -> String {
    p.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn cert_and_key_in_either_order() {
    let pki = TestPki::generate();
    let (cert, key) = (path(pki.client_cert()), path(pki.client_key()));
    for order in [
        [("tls_cert", &cert), ("tls_key", &key)],
        [("tls_key", &key), ("tls_cert", &cert)],
    ] {
        let mut config = ProducerConfig::default();
        config.set("tls_v1", "true").unwrap();
        config
            .set("tls_root_ca_file", &path(pki.ca_cert()))
            .unwrap();
        for (option, value) in order {
            config.set(option, value).unwrap();
        }
        config.validate().unwrap();
        Producer::new("127.0.0.1:4150", config).unwrap();
    }
}
