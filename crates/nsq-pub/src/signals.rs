//! Interrupts: SIGINT (Ctrl-C), SIGTERM (systemd, Kubernetes, `timeout`) and SIGHUP (a closed
//! terminal) all mean the same: the first stops reading input and waits for what was sent, the
//! second stops waiting for answers.

use tokio::sync::watch;

use crate::console::Printer;

/// An interrupt: how many so far, and the last signal's name.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Interrupts {
    pub(crate) count: u8,
    pub(crate) signal: Option<&'static str>,
}

/// Starts counting interrupts (from now on they no longer end the process); the count is in the
/// returned channel.
///
/// # Errors
///
/// A signal handler that cannot be installed.
pub(crate) fn listen() -> std::io::Result<watch::Sender<Interrupts>> {
    let (tx, _) = watch::channel(Interrupts::default());
    let counting = tx.clone();
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
                note(&counting, name);
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            note(&counting, "Ctrl-C");
        }
    });
    Ok(tx)
}

fn note(counting: &watch::Sender<Interrupts>, name: &'static str) {
    counting.send_modify(|i| {
        i.count = i.count.saturating_add(1);
        i.signal = Some(name);
    });
    if counting.borrow().count == 1 {
        Printer.line(format_args!(
            "{}: interrupted ({name}): finishing what was sent (interrupt again to stop \
             waiting)",
            env!("CARGO_BIN_NAME")
        ));
    }
}
