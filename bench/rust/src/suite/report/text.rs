//! Formatting: the tables as text and Markdown, row titles, and numbers as people read them.

use std::fmt::Write as _;

use crate::suite::plan::Plan;

/// A table with a label column and one column per client; cells may span several lines.
pub(crate) struct Table {
    pub(super) header: Vec<String>,
    pub(crate) rows: Vec<(String, Vec<Vec<String>>)>,
}

impl Table {
    pub(super) fn new(plan: &Plan) -> Self {
        let mut header = vec!["case".to_owned()];
        header.extend(plan.publishers().map(|c| c.name().to_owned()));
        Self {
            header,
            rows: Vec::new(),
        }
    }

    /// Plain text, columns padded, a rule between rows.
    pub(crate) fn render_text(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (label, cells) in &self.rows {
            widths[0] = widths[0].max(label.chars().count());
            for (i, cell) in cells.iter().enumerate() {
                for line in cell {
                    widths[i + 1] = widths[i + 1].max(line.chars().count());
                }
            }
        }
        let rule: String = widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-");
        // A rule between rows only when cells span several lines.
        let tall = self
            .rows
            .iter()
            .any(|(_, cells)| cells.iter().any(|c| c.len() > 1));
        let mut out = String::new();
        push_line(&mut out, &self.header, &widths);
        out.push_str(&rule);
        out.push('\n');
        for (row, (label, cells)) in self.rows.iter().enumerate() {
            let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            for line in 0..height {
                let mut fields = vec![if line == 0 {
                    label.clone()
                } else {
                    String::new()
                }];
                fields.extend(
                    cells
                        .iter()
                        .map(|cell| cell.get(line).cloned().unwrap_or_default()),
                );
                push_line(&mut out, &fields, &widths);
            }
            if tall && row + 1 < self.rows.len() {
                out.push_str(&rule);
                out.push('\n');
            }
        }
        out
    }

    /// A Markdown table; a cell's lines are joined with `<br>`.
    pub(crate) fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            self.header.iter().map(|_| "---|").collect::<String>()
        );
        for (label, cells) in &self.rows {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| c.join("<br>").replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out
    }
}

pub(super) fn push_line(out: &mut String, fields: &[String], widths: &[usize]) {
    let padded: Vec<String> = fields
        .iter()
        .zip(widths)
        .map(|(f, w)| format!("{f}{}", " ".repeat(w.saturating_sub(f.chars().count()))))
        .collect();
    out.push_str(padded.join(" | ").trim_end());
    out.push('\n');
}

/// The row label of the main table.
pub(super) fn row_title(label: &str, plan: &Plan) -> String {
    match label {
        "a" => "(a) one caller, wait each".to_owned(),
        "b" => format!("(b) {} callers, shared", plan.callers),
        "c" => format!("(c) pipelined, {} out", plan.window),
        "c*" => "(c*) as (c), batching on".to_owned(),
        "d" => format!("(d) MPUB of {}", plan.batch),
        "e(a)" => "(e) latency of (a) p50/p99/p99.9".to_owned(),
        "e(c)" => "(e) latency of (c) p50/p99/p99.9".to_owned(),
        "f" => format!("(f) peak RSS, {} burst", rate(plan.rss_n as f64)),
        "g" => "(g) allocations per message".to_owned(),
        "h" => "(h) after a stall, task per call".to_owned(),
        "i" => "(i) after a stall, FuturesUnordered".to_owned(),
        "j0" => format!("(j0) 3 nsqd, {} callers, no kill", plan.callers),
        "j" => "(j) as (j0), one nsqd killed".to_owned(),
        "l" => "(l) as (j0), one nsqd stopped 6 s".to_owned(),
        "m" => format!("(m) consume {}, 1 nsqd", rate(plan.consumer_n as f64)),
        "n" => format!("(n) consume {}, 3 nsqd", rate(plan.consumer_n as f64)),
        "k" => format!(
            "(k) CLI: {} lines of {} bytes from a file",
            thousands(plan.cli_n),
            plan.size
        ),
        "o" => format!(
            "(o) CLI: read {} to /dev/null, 1 nsqd",
            rate(plan.consumer_n as f64)
        ),
        "p" => format!(
            "(p) CLI: forward {} from one nsqd to another",
            rate(plan.consumer_n as f64)
        ),
        other => other.to_owned(),
    }
}

/// A rate with three significant digits: `950`, `23.6k`, `1.11M`.
pub(crate) fn rate(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let decimals = if suffix.is_empty() || scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.decimals$}{suffix}")
}

pub(super) fn micros(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(3)).collect();
        short.push_str("...");
        short
    }
}

/// `n` with a comma between groups of three digits: `1,000,000`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_commas() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn rates() {
        assert_eq!(rate(950.4), "950");
        assert_eq!(rate(23_574.0), "23.6k");
        assert_eq!(rate(104_160.0), "104k");
        assert_eq!(rate(1_113_900.0), "1.11M");
    }

    #[test]
    fn tables_render() {
        let table = Table {
            header: vec!["case".into(), "producer".into()],
            rows: vec![("(a)".into(), vec![vec!["1k".into(), "0.1 MB/s".into()]])],
        };
        let text = table.render_text();
        assert!(text.starts_with("case | producer\n"));
        assert!(text.contains("(a)  | 1k\n     | 0.1 MB/s\n"));
        let md = table.render_markdown();
        assert!(md.contains("| (a) | 1k<br>0.1 MB/s |"));
    }
}
