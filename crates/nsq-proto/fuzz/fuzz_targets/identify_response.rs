//! Arbitrary bytes as the IDENTIFY and AUTH replies: parsing must not panic, and whatever parses
//! must negotiate against several requests without panicking and within the rules.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_proto::{
    AuthResponse, Compression, IdentifyConfig, IdentifyResponse, Response, Upgrade, UpgradePlan,
};

fn requests() -> Vec<IdentifyConfig> {
    let plain = IdentifyConfig::new("c", "h", "nsq-rs/fuzz");
    let mut tls = plain.clone();
    tls.tls_v1 = true;
    let mut snappy = plain.clone();
    snappy.snappy = true;
    let mut deflate = plain.clone();
    deflate.deflate = true;
    deflate.deflate_level = 9;
    let mut everything = tls.clone();
    everything.snappy = true;
    everything.deflate = true;
    everything.heartbeat_interval = None;
    vec![plain, tls, snappy, deflate, everything]
}

fuzz_target!(|data: &[u8]| {
    let _ = AuthResponse::parse(data);

    let parsed = IdentifyResponse::parse(data);
    let response = Response::parse(Bytes::copy_from_slice(data));
    let from_response = IdentifyResponse::from_response(&response);
    if response == Response::Ok {
        assert_eq!(from_response, Ok(IdentifyResponse::plain()));
    } else {
        assert_eq!(from_response, parsed);
    }

    for reply in [parsed, from_response].into_iter().flatten() {
        for request in requests() {
            for have_secret in [false, true] {
                let Ok(plan) = UpgradePlan::negotiate(&request, &reply, have_secret) else {
                    continue;
                };
                // Nothing is enabled that was not asked for, TLS is never silently dropped, and
                // AUTH only happens with a secret.
                assert_eq!(plan.tls, request.tls_v1);
                match plan.compression {
                    Some(Compression::Snappy) => assert!(request.snappy),
                    Some(Compression::Deflate { level }) => {
                        assert!(request.deflate);
                        assert_eq!(level, request.deflate_level);
                    }
                    None => {}
                }
                assert!(!plan.auth || have_secret);
                let steps: Vec<Upgrade> = plan.steps().collect();
                let rank = |s: &Upgrade| match s {
                    Upgrade::Tls => 0,
                    Upgrade::Compress(_) => 1,
                    Upgrade::Auth => 2,
                };
                assert!(steps.windows(2).all(|w| rank(&w[0]) < rank(&w[1])));
            }
        }
    }
});
