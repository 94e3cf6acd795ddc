//! A server's log (nsqd's or nsqlookupd's): drained from its stderr by a background thread, the
//! recent lines kept, the listening addresses picked out.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// How many of the most recent log lines are kept for error messages.
const KEEP_LINES: usize = 200;

/// The addresses the server reported in its `listening on` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Listening {
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) http: Option<SocketAddr>,
    pub(crate) https: Option<SocketAddr>,
}

/// The log of one server, shared with the thread that reads the current process's stderr.
#[derive(Debug, Default)]
pub(crate) struct Log {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The last lines, across restarts.
    lines: VecDeque<String>,
    /// What the current process has reported so far.
    listening: Listening,
    /// The current process closed its stderr, which means it exited.
    closed: bool,
}

/// How [`Log::wait_for_listeners`] ended, if not with the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// stderr closed: the process exited.
    Exited,
    TimedOut,
}

impl Log {
    /// Starts a background thread that reads `stderr` line by line until it closes.
    ///
    /// Call this once per process, after the previous reader has been joined: it forgets what
    /// the previous process reported.
    pub(crate) fn follow(
        self: &Arc<Self>,
        stderr: impl Read + Send + 'static,
        name: &str,
        pid: u32,
    ) -> JoinHandle<()> {
        {
            let mut state = self.lock();
            state.listening = Listening::default();
            state.closed = false;
        }
        let log = Arc::clone(self);
        thread::Builder::new()
            .name(format!("{name}-{pid}-stderr"))
            .spawn(move || log.read_until_closed(stderr))
            .unwrap_or_else(|err| {
                panic!("cannot spawn the thread that reads {name}'s stderr: {err}")
            })
    }

    /// Records a line written by the harness itself, e.g. that the server was killed.
    pub(crate) fn note(&self, line: String) {
        self.lock().push(line);
    }

    /// Waits until the current process has reported its TCP and HTTP addresses (and HTTPS when
    /// `https` is set), it exits, or `deadline` passes.
    pub(crate) fn wait_for_listeners(
        &self,
        https: bool,
        deadline: Instant,
    ) -> Result<Listening, WaitError> {
        let mut state = self.lock();
        loop {
            let listening = state.listening;
            if listening.tcp.is_some()
                && listening.http.is_some()
                && (!https || listening.https.is_some())
            {
                return Ok(listening);
            }
            if state.closed {
                return Err(WaitError::Exited);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::TimedOut);
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// What the current process has reported so far.
    pub(crate) fn listening(&self) -> Listening {
        self.lock().listening
    }

    /// The kept lines, oldest first, one per line.
    pub(crate) fn tail(&self) -> String {
        let state = self.lock();
        let mut text = String::new();
        for line in &state.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn read_until_closed(&self, stderr: impl Read) {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    let mut state = self.lock();
                    record_listener(&mut state.listening, &text);
                    state.push(text);
                    drop(state);
                    self.changed.notify_all();
                }
            }
        }
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn push(&mut self, line: String) {
        if self.lines.len() == KEEP_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// Picks the address out of a line such as
/// `[nsqd] 2026/11/21 09:00:00.000000 INFO: TCP: listening on 127.0.0.1:40123` (nsqlookupd
/// writes the same, with its own prefix).
fn record_listener(listening: &mut Listening, line: &str) {
    let Some((before, address)) = line.rsplit_once(" listening on ") else {
        return;
    };
    let Ok(address) = address.trim().parse::<SocketAddr>() else {
        return;
    };
    let slot = if before.ends_with(" TCP:") {
        &mut listening.tcp
    } else if before.ends_with(" HTTP:") {
        &mut listening.http
    } else if before.ends_with(" HTTPS:") {
        &mut listening.https
    } else {
        return;
    };
    *slot = Some(address);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const STARTUP: &str = "\
[nsqd] 2026/11/21 09:21:02.784737 INFO: nsqd v1.3.0 (built w/go1.26.8)
[nsqd] 2026/11/21 09:21:02.784756 INFO: ID: 617
[nsqd] 2026/11/21 09:21:02.785336 INFO: NSQ: persisting topic/channel metadata to /tmp/d/nsqd.dat
[nsqd] 2026/11/21 09:21:02.786534 INFO: TCP: listening on 127.0.0.1:45989
[nsqd] 2026/11/21 09:21:02.786574 INFO: HTTP: listening on 127.0.0.1:44153
[nsqd] 2026/11/21 09:21:02.786600 INFO: HTTPS: listening on 127.0.0.1:42831
";

    #[test]
    fn picks_the_addresses_out_of_the_startup_lines() {
        let mut listening = Listening::default();
        for line in STARTUP.lines() {
            record_listener(&mut listening, line);
        }
        assert_eq!(listening.tcp, Some("127.0.0.1:45989".parse().unwrap()));
        assert_eq!(listening.http, Some("127.0.0.1:44153".parse().unwrap()));
        assert_eq!(listening.https, Some("127.0.0.1:42831".parse().unwrap()));
    }

    #[test]
    fn reads_nsqlookupd_lines_with_their_own_prefix() {
        let startup = "\
[nsqlookupd-7-1] 2026/12/02 01:07:41.512265 INFO: nsqlookupd v1.3.0 (built w/go1.26.8)
[nsqlookupd-7-1] 2026/12/02 01:07:41.513546 INFO: HTTP: listening on 127.0.0.1:40831
[nsqlookupd-7-1] 2026/12/02 01:07:41.513681 INFO: TCP: listening on 127.0.0.1:42575
";
        let mut listening = Listening::default();
        for line in startup.lines() {
            record_listener(&mut listening, line);
        }
        assert_eq!(listening.tcp, Some("127.0.0.1:42575".parse().unwrap()));
        assert_eq!(listening.http, Some("127.0.0.1:40831".parse().unwrap()));
        assert_eq!(listening.https, None);
    }

    #[test]
    fn ignores_other_lines() {
        let mut listening = Listening::default();
        record_listener(&mut listening, "[nsqd] INFO: TCP: new client(127.0.0.1:5)");
        record_listener(&mut listening, "[nsqd] INFO: FOO: listening on 127.0.0.1:1");
        record_listener(
            &mut listening,
            "[nsqd] INFO: TCP: listening on /tmp/nsqd.sock",
        );
        assert_eq!(listening, Listening::default());
    }

    #[test]
    fn follows_a_stream_and_notices_when_it_closes() {
        let log = Arc::new(Log::default());
        let reader = log.follow(STARTUP.as_bytes(), "nsqd", 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let listening = log.wait_for_listeners(true, deadline).unwrap();
        assert_eq!(listening.tcp, Some("127.0.0.1:45989".parse().unwrap()));
        reader.join().unwrap();
        assert!(
            log.tail()
                .ends_with("HTTPS: listening on 127.0.0.1:42831\n")
        );

        // A second process that exits before it listens.
        let reader = log.follow(&b"[nsqd] FATAL: listen failed\n"[..], "nsqd", 2);
        reader.join().unwrap();
        assert_eq!(
            log.wait_for_listeners(false, deadline),
            Err(WaitError::Exited)
        );
        assert_eq!(log.listening(), Listening::default());
        assert!(log.tail().contains("FATAL: listen failed"));
    }

    #[test]
    fn keeps_only_the_last_lines() {
        let log = Arc::new(Log::default());
        let text: String = (0..KEEP_LINES + 50)
            .map(|i| format!("line {i}\n"))
            .collect();
        log.follow(std::io::Cursor::new(text.into_bytes()), "nsqd", 1)
            .join()
            .unwrap();
        let tail = log.tail();
        assert_eq!(tail.lines().count(), KEEP_LINES);
        assert!(tail.starts_with("line 50\n"));
    }

    #[test]
    fn times_out_without_listeners() {
        let log = Log::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            log.wait_for_listeners(false, deadline),
            Err(WaitError::TimedOut)
        );
    }
}
