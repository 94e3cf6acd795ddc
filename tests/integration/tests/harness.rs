//! Self-tests of the `Nsqd` and `Nsqlookupd` harnesses against the real nsqd and nsqlookupd
//! v1.3.0, and of the `to_nsq` binary the harness finds (nsq-pub's tests cross-check nsq-tail
//! against `nsq_tail`).
//!
//! They talk to nsqd with hand-written bytes rather than the workspace's crates, so that a bug
//! in the harness cannot hide behind a bug in the client, or the other way round; only the
//! nsqlookupd round trip reads back with nsq-consumer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use nsq_test_support::{NsqTool, Nsqd, NsqdOptions, Nsqlookupd};

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

/// Sends `GET /ping` over a raw connection and returns whatever arrives within `wait`.
fn raw_ping(addr: SocketAddr, wait: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(wait))?;
    stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn nsqlookupd_starts_on_ephemeral_loopback_ports() {
    let a = Nsqlookupd::start();
    let b = Nsqlookupd::start();
    for lookupd in [&a, &b] {
        assert!(lookupd.is_running());
        assert!(lookupd.tcp_addr().ip().is_loopback());
        assert!(lookupd.http_addr().ip().is_loopback());
        assert_ne!(lookupd.tcp_addr().port(), 4160);
        assert_ne!(lookupd.http_addr().port(), 4161);
        assert!(pid_file(lookupd.pid().unwrap()).exists());
        assert!(lookupd.log_tail().contains("TCP: listening on"));
    }
    assert_ne!(a.tcp_addr(), b.tcp_addr());
    assert_ne!(a.http_addr(), b.http_addr());

    let info = a.http_request("GET", "/info", b"");
    assert_eq!(info.status, 200);
    assert!(info.text().contains(r#""version":"1.3.0""#), "{info:?}");
    assert!(a.nodes().is_empty(), "no nsqd registered yet");
}

#[test]
fn nsqd_registers_with_two_lookupds_and_a_tombstone_stays_with_one() {
    let a = Nsqlookupd::start();
    let b = Nsqlookupd::start();
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&a).lookupd(&b));

    for lookupd in [&a, &b] {
        let node = lookupd.wait_for_nsqd(&nsqd);
        assert_eq!(node["broadcast_address"], "127.0.0.1");
        assert_eq!(node["tcp_port"], nsqd.tcp_addr().port());
        assert_eq!(node["http_port"], nsqd.http_addr().port());
        assert_eq!(node["version"], "1.3.0");
    }

    nsqd.create_topic("registered");
    for lookupd in [&a, &b] {
        lookupd.wait_for_topic(&nsqd, "registered");
        assert_eq!(lookupd.is_tombstoned(&nsqd, "registered"), Some(false));
    }
    assert_eq!(a.is_tombstoned(&nsqd, "never_created"), None);

    a.tombstone_topic("registered", &nsqd);
    assert_eq!(a.is_tombstoned(&nsqd, "registered"), Some(true));
    assert_eq!(b.is_tombstoned(&nsqd, "registered"), Some(false));
}

#[test]
fn nsqlookupd_pause_resume_stop_and_restart() {
    let mut lookupd = Nsqlookupd::start();
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    lookupd.wait_for_nsqd(&nsqd);
    let (tcp, http) = (lookupd.tcp_addr(), lookupd.http_addr());
    let first_pid = lookupd.pid().unwrap();

    lookupd.pause();
    let answer = raw_ping(http, Duration::from_millis(300));
    assert!(answer.is_err(), "a paused nsqlookupd answered: {answer:?}");
    lookupd.resume();
    assert!(
        raw_ping(http, Duration::from_secs(5))
            .unwrap()
            .ends_with("OK")
    );

    lookupd.stop();
    assert!(!lookupd.is_running());
    assert!(!pid_file(first_pid).exists());
    assert!(
        TcpStream::connect(http).is_err(),
        "nothing listens while stopped"
    );

    lookupd.restart();
    assert_ne!(lookupd.pid(), Some(first_pid));
    assert_eq!((lookupd.tcp_addr(), lookupd.http_addr()), (tcp, http));
    assert!(lookupd.log_tail().contains("restarting nsqlookupd"));
    // The new process knows nothing until nsqd's pings (every 15 s) notice and reconnect.
    let node = lookupd.wait_for_nsqd(&nsqd);
    assert_eq!(node["tcp_port"], nsqd.tcp_addr().port());
}

#[test]
fn nsqlookupd_drop_kills_the_process() {
    let lookupd = Nsqlookupd::start();
    let pid = lookupd.pid().unwrap();
    let http = lookupd.http_addr();
    assert!(process_exists(pid));
    drop(lookupd);
    assert!(!process_exists(pid), "nsqlookupd {pid} still runs");
    assert!(!pid_file(pid).exists());
    assert!(TcpStream::connect(http).is_err());
}

/// Waits up to 30 seconds for `child` to exit and returns its output.
fn finish(mut child: Child, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what} did not exit within 30 s; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn to_nsq_publishes_and_a_consumer_reads_through_nsqlookupd() {
    let lookupd = Nsqlookupd::start();
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));

    let mut to_nsq = Command::new(NsqTool::ToNsq.path())
        .arg("--topic=tools")
        .arg(format!("--nsqd-tcp-address={}", nsqd.tcp_addr()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    to_nsq
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    let output = finish(to_nsq, "to_nsq");
    assert!(
        output.status.success(),
        "to_nsq: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(nsqd.topic_message_count("tools"), Some(3));
    lookupd.wait_for_topic(&nsqd, "tools");

    // The consumer finds the nsqd through nsqlookupd's /lookup and reads the three messages.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bodies = runtime.block_on(async {
        let mut consumer = nsq_consumer::Consumer::builder("tools", "readback")
            .unwrap()
            .lookupd(lookupd.http_addr().to_string())
            .connect()
            .await
            .unwrap();
        let mut bodies = Vec::new();
        while bodies.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.next())
                .await
                .expect("three messages within 30 s")
                .expect("the consumer runs");
            bodies.push(String::from_utf8_lossy(message.body()).into_owned());
            message.finish().unwrap();
        }
        let report = consumer.drain().await;
        assert_eq!(report.finished, 3, "{report}");
        bodies
    });
    assert_eq!(bodies, ["one", "two", "three"]);
    assert_eq!(nsqd.channel_depth("tools", "readback"), Some(0));
}
