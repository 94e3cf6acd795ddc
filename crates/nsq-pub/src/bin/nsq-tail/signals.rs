//! Interrupts: SIGINT (Ctrl-C), SIGTERM and SIGHUP. The first stops reading and drains (what
//! was not printed is requeued); the second exits at once.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A signal this soon after the first is the same interrupt delivered twice (`timeout` sends
/// its signal to the process and then to its whole process group), not a second one.
const SAME_INTERRUPT: Duration = Duration::from_millis(250);

/// The interrupts so far: how many, and the last signal's name.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Interrupts {
    pub(crate) count: u8,
    pub(crate) signal: Option<&'static str>,
}

/// Starts counting interrupts (from now on they no longer end the process).
///
/// # Errors
///
/// A signal handler that cannot be installed.
pub(crate) fn listen() -> std::io::Result<watch::Receiver<Interrupts>> {
    let (tx, rx) = watch::channel(Interrupts::default());
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            let mut first = None;
            loop {
                let name = tokio::select! {
                    Some(()) = int.recv() => "SIGINT",
                    Some(()) = term.recv() => "SIGTERM",
                    Some(()) = hup.recv() => "SIGHUP",
                    else => return,
                };
                note(&tx, name, &mut first);
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let mut first = None;
        while tokio::signal::ctrl_c().await.is_ok() {
            note(&tx, "Ctrl-C", &mut first);
        }
    });
    Ok(rx)
}

fn note(tx: &watch::Sender<Interrupts>, name: &'static str, first: &mut Option<Instant>) {
    match first {
        Some(at) if at.elapsed() < SAME_INTERRUPT => return,
        Some(_) => {}
        None => *first = Some(Instant::now()),
    }
    tx.send_modify(|i| {
        i.count = i.count.saturating_add(1);
        i.signal = Some(name);
    });
    if tx.borrow().count == 1 {
        eprintln!(
            "nsq-tail: interrupted ({name}): requeuing what was not printed (interrupt again to \
             exit at once)"
        );
    } else {
        // What is in flight is redelivered by nsqd after its msg_timeout.
        eprintln!("nsq-tail: interrupted again ({name}): exiting now");
        std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
    }
}
