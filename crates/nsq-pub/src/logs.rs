//! The producer's or consumer's log (`tracing` events: reconnections, nsqlookupd failures,
//! options it ignores) on standard error, above the progress line, each line starting with the
//! binary's name. Off unless `-v` or `RUST_LOG` asks.
//!
//! `RUST_LOG` takes comma-separated directives, each a level (`warn`) or a target prefix and a
//! level (`nsq_producer::pool=debug`); the longest matching prefix wins. `-v` is `info`, `-vv`
//! `debug`, `-vvv` `trace`, for every target; `RUST_LOG`, when set, decides instead.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::console::Printer;

/// Installs the log for `-v` given `verbose` times, or for `RUST_LOG`.
pub(crate) fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => Filter::parse(&spec),
        _ => Filter {
            default: match verbose {
                0 => LevelFilter::OFF,
                1 => LevelFilter::INFO,
                2 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            },
            targets: Vec::new(),
        },
    };
    if filter.max() == LevelFilter::OFF {
        return;
    }
    let log = Log {
        filter,
        next_span: AtomicU64::new(1),
    };
    // Only fails if one is installed already, which nothing else does.
    let _ = tracing::subscriber::set_global_default(log);
}

/// Which events are shown.
#[derive(Debug, PartialEq)]
struct Filter {
    default: LevelFilter,
    /// Target prefixes and their level.
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Reads `RUST_LOG`; a directive it cannot read is left out.
    fn parse(spec: &str) -> Self {
        let mut filter = Self {
            default: LevelFilter::OFF,
            targets: Vec::new(),
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                Some((target, level)) => {
                    if let Ok(level) = LevelFilter::from_str(level) {
                        filter.targets.push((target.to_owned(), level));
                    }
                }
                None => match LevelFilter::from_str(directive) {
                    Ok(level) => filter.default = level,
                    // A bare target: everything it logs.
                    Err(_) => filter
                        .targets
                        .push((directive.to_owned(), LevelFilter::TRACE)),
                },
            }
        }
        filter
    }

    fn level(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .filter(|(prefix, _)| {
                target
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, level)| *level)
    }

    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, LevelFilter::max)
    }
}

/// Events as lines through [`Printer`]; spans are not recorded.
struct Log {
    filter: Filter,
    next_span: AtomicU64,
}

impl Subscriber for Log {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.filter.level(metadata.target())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max())
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line::default();
        event.record(&mut line);
        Printer.line(format_args!(
            "{}: {} {}: {}{}",
            env!("CARGO_BIN_NAME"),
            metadata.level(),
            metadata.target(),
            line.message,
            line.fields
        ));
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// An event's message and its other fields as ` name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl tracing::field::Visit for Line {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives_pick_the_longest_prefix() {
        let filter = Filter::parse("warn,nsq_producer::pool=debug,nsq_conn=off,bogus=loud");
        assert_eq!(
            filter.level("nsq_producer::pool::discover"),
            LevelFilter::DEBUG
        );
        assert_eq!(filter.level("nsq_producer::router"), LevelFilter::WARN);
        assert_eq!(filter.level("nsq_producer::poolside"), LevelFilter::WARN);
        assert_eq!(filter.level("nsq_conn::tls"), LevelFilter::OFF);
        assert_eq!(filter.max(), LevelFilter::DEBUG);
        assert_eq!(
            Filter::parse("nsq_producer").level("nsq_producer::x"),
            LevelFilter::TRACE
        );
    }
}
