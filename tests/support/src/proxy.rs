//! [`DelayProxy`]: a TCP proxy that delays every byte a server sends, to make a real nsqd
//! answer as slowly as one stuck on its disk.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP proxy on an ephemeral loopback port in front of `upstream`: what clients send goes
/// through at once, and what the server sends reaches the client `delay` later, in order. Each
/// reply of the server is late by `delay`, however many requests are outstanding, as when the
/// server itself is slow rather than the link.
///
/// Threads, not tasks: it works under any runtime or none. Dropping the value stops accepting
/// and closes every proxied connection.
pub struct DelayProxy {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl DelayProxy {
    /// Starts a proxy to `upstream` that delays the server's bytes by `delay`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|err| panic!("cannot bind a port for the proxy: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("the proxy's port: {err}"));
        let stopped = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (stop, kept) = (stopped.clone(), streams.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    kept.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend([c, s]);
                }
                relay(client, server, delay);
            }
        });
        Self {
            addr,
            stopped,
            streams,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        // Wakes the accepting thread, which sees the flag and ends.
        let _ = TcpStream::connect(self.addr);
        for stream in self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Copies client to server at once, and server to client `delay` late.
fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (due, later) = mpsc::channel::<(Instant, Vec<u8>)>();
    let mut server_in = server;
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match server_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if due
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let mut client_out = client;
    thread::spawn(move || {
        for (at, bytes) in later {
            thread::sleep(at.saturating_duration_since(Instant::now()));
            if client_out.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = client_out.shutdown(Shutdown::Write);
    });
}
