//! Self-tests of the `Nsqd` harness against the real nsqd v1.3.0.
//!
//! They talk to nsqd with hand-written bytes rather than the workspace's crates, so that a bug
//! in the harness cannot hide behind a bug in the client, or the other way round.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use nsq_test_support::{Nsqd, NsqdOptions};

/// The response frame nsqd sends for a successful PUB: size 6, frame type 0, `OK`.
const OK_FRAME: [u8; 10] = [0, 0, 0, 6, 0, 0, 0, 0, b'O', b'K'];

/// A V2 connection that publishes by hand.
struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect to nsqd");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(b"  V2").unwrap();
        Self { stream }
    }

    /// Sends `PUB <topic>\n<size><body>` and returns the whole response frame.
    fn publish(&mut self, topic: &str, body: &[u8]) -> Vec<u8> {
        let mut command = format!("PUB {topic}\n").into_bytes();
        command.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        command.extend_from_slice(body);
        self.stream.write_all(&command).unwrap();
        self.read_frame()
    }

    fn read_frame(&mut self) -> Vec<u8> {
        let mut size = [0; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut rest = vec![0; u32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut rest).unwrap();
        let mut frame = size.to_vec();
        frame.extend_from_slice(&rest);
        frame
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        || std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

fn pid_file(pid: u32) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/nsqd/pids")
        .join(pid.to_string())
}

#[test]
fn starts_on_ephemeral_loopback_ports_and_answers_ping() {
    let nsqd = Nsqd::start();
    assert!(nsqd.is_running());
    assert!(nsqd.tcp_addr().ip().is_loopback());
    assert!(nsqd.http_addr().ip().is_loopback());
    assert_ne!(nsqd.tcp_addr().port(), 4150);
    assert_ne!(nsqd.http_addr().port(), 4151);
    assert_eq!(nsqd.https_addr(), None, "no HTTPS listener without TLS");

    let ping = nsqd.http_request("GET", "/ping", b"");
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));

    let stats = nsqd.stats();
    assert_eq!(stats["version"], "1.3.0");
    assert_eq!(stats["health"], "OK");
    assert!(nsqd.log_tail().contains("TCP: listening on"));
}

#[test]
fn two_instances_do_not_share_anything() {
    let a = Nsqd::start();
    let b = Nsqd::start();
    assert_ne!(a.tcp_addr(), b.tcp_addr());
    assert_ne!(a.http_addr(), b.http_addr());
    assert_ne!(a.data_dir(), b.data_dir());
    a.create_topic("only_in_a");
    assert_eq!(a.topic_depth("only_in_a"), Some(0));
    assert_eq!(b.topic_depth("only_in_a"), None);
}

#[test]
fn raw_pub_shows_up_in_stats() {
    let nsqd = Nsqd::start();
    assert_eq!(nsqd.topic_depth("t"), None);
    assert_eq!(nsqd.topic_message_count("t"), None);

    let mut client = RawClient::connect(nsqd.tcp_addr());
    assert_eq!(client.publish("t", b"hello"), OK_FRAME);
    assert_eq!(client.publish("t", b"world"), OK_FRAME);

    assert_eq!(nsqd.topic_depth("t"), Some(2));
    assert_eq!(nsqd.topic_message_count("t"), Some(2));
    let topic = nsqd.topic_stats("t").unwrap();
    assert_eq!(topic["message_bytes"], 10);
}

#[test]
fn topics_and_channels_can_be_managed_over_http() {
    let nsqd = Nsqd::start();
    nsqd.create_topic("orders");
    assert_eq!(nsqd.topic_depth("orders"), Some(0));

    // Once a channel exists the topic hands its messages over: the depth moves to the channel.
    nsqd.create_channel("orders", "audit");
    assert_eq!(nsqd.channel_depth("orders", "audit"), Some(0));
    assert_eq!(nsqd.channel_depth("orders", "missing"), None);
    nsqd.http_publish("orders", b"one");
    let mut client = RawClient::connect(nsqd.tcp_addr());
    assert_eq!(client.publish("orders", b"two"), OK_FRAME);
    assert_eq!(nsqd.topic_message_count("orders"), Some(2));
    assert_eq!(nsqd.channel_depth("orders", "audit"), Some(2));

    // `#` needs escaping in the query string.
    nsqd.create_topic("scratch#ephemeral");
    assert_eq!(nsqd.topic_depth("scratch#ephemeral"), Some(0));

    assert!(nsqd.delete_topic("orders"));
    assert!(!nsqd.delete_topic("orders"));
    assert_eq!(nsqd.topic_depth("orders"), None);
}

#[test]
fn options_reach_nsqd() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(8).arg("--msg-timeout=5s"));
    let config = nsqd.http_request("GET", "/config/max_msg_size", b"");
    assert_eq!(config.text().trim(), "8");

    let mut client = RawClient::connect(nsqd.tcp_addr());
    assert_eq!(client.publish("small", b"12345678"), OK_FRAME);
    let refused = client.publish("small", b"123456789");
    assert_eq!(&refused[4..8], &[0, 0, 0, 1], "an error frame");
    let text = String::from_utf8_lossy(&refused[8..]);
    assert!(text.starts_with("E_BAD_MESSAGE"), "{text}");
}

#[test]
fn restart_keeps_ports_and_data_dir() {
    let mut nsqd = Nsqd::start();
    let (tcp, http, data_dir) = (
        nsqd.tcp_addr(),
        nsqd.http_addr(),
        nsqd.data_dir().to_owned(),
    );
    let first_pid = nsqd.pid().unwrap();
    let mut client = RawClient::connect(tcp);
    assert_eq!(
        client.publish("kept", b"survives a graceful restart"),
        OK_FRAME
    );
    drop(client);

    // A graceful shutdown writes in-memory messages to the data directory.
    nsqd.shutdown();
    assert!(!nsqd.is_running());
    assert_eq!(nsqd.pid(), None);
    assert!(!pid_file(first_pid).exists());
    assert!(
        TcpStream::connect(tcp).is_err(),
        "nothing listens while stopped"
    );

    nsqd.restart();
    assert!(nsqd.is_running());
    assert_ne!(nsqd.pid(), Some(first_pid));
    assert!(pid_file(nsqd.pid().unwrap()).exists());
    assert_eq!((nsqd.tcp_addr(), nsqd.http_addr()), (tcp, http));
    assert_eq!(nsqd.data_dir(), data_dir);
    assert_eq!(nsqd.topic_depth("kept"), Some(1));

    // Restarting a running nsqd kills it first; it comes back on the same ports again.
    nsqd.restart();
    let mut client = RawClient::connect(tcp);
    assert_eq!(client.publish("kept", b"again"), OK_FRAME);
    assert!(nsqd.log_tail().contains("restarting nsqd"));
}

#[test]
fn stop_is_like_a_crash_and_can_be_repeated() {
    let mut nsqd = Nsqd::start();
    let tcp = nsqd.tcp_addr();
    nsqd.stop();
    nsqd.stop();
    assert!(!nsqd.is_running());
    assert!(TcpStream::connect(tcp).is_err());
    nsqd.restart();
    assert!(TcpStream::connect(tcp).is_ok());
}

#[test]
fn drop_kills_the_process_and_removes_the_data_dir() {
    let nsqd = Nsqd::start();
    let pid = nsqd.pid().unwrap();
    let data_dir = nsqd.data_dir().to_owned();
    let tcp = nsqd.tcp_addr();
    assert!(process_exists(pid));
    assert!(data_dir.join("nsqd.dat").exists() || data_dir.is_dir());
    assert!(pid_file(pid).exists());

    drop(nsqd);
    assert!(!process_exists(pid), "nsqd {pid} still runs");
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!pid_file(pid).exists());
    assert!(TcpStream::connect(tcp).is_err());
}

#[test]
fn a_bad_option_panics_with_nsqd_s_log() {
    let panic = std::panic::catch_unwind(|| {
        Nsqd::start_with(NsqdOptions::new().tls_required("true"));
    })
    .expect_err("nsqd refuses --tls-required without a certificate");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("exited during start-up"), "{message}");
    assert!(message.contains("--tls-required=true"), "{message}");
    assert!(message.contains("nsqd's log"), "{message}");
}
