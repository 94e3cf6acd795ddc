//! Interrupts: SIGINT (Ctrl-C), SIGTERM and SIGHUP. The first stops reading and drains (what
//! was not printed is requeued); the second exits at once.

use tokio::sync::watch;

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
            loop {
                let name = tokio::select! {
                    Some(()) = int.recv() => "SIGINT",
                    Some(()) = term.recv() => "SIGTERM",
                    Some(()) = hup.recv() => "SIGHUP",
                    else => return,
                };
                note(&tx, name);
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            note(&tx, "Ctrl-C");
        }
    });
    Ok(rx)
}

fn note(tx: &watch::Sender<Interrupts>, name: &'static str) {
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
