//! What one run of one client in one case gave, as the suite records it in `results.json`.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::failover::FailoverRun;
use super::plan::{Case, Client, Plan};
use crate::record::RunResult;

/// What one run of one client in one case gave.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    pub(crate) round: u32,
    pub(crate) case: &'static str,
    pub(crate) client: &'static str,
    /// The client's result line; `None` if it failed.
    pub(crate) result: Option<RunResult>,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<String>,
    /// nsqd's depth of the topic after the run, and the part of it on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) topic_depth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backend_depth: Option<u64>,
    /// Set when nsqd's count does not match what the client says was acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mismatch: Option<String>,
    /// CPU seconds nsqd used while the client process ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nsqd_cpu_s: Option<f64>,
    /// Wall-clock seconds of the client process, start-up included.
    pub(crate) process_s: f64,
    /// Cases j and j0: what the suite saw and computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failover: Option<FailoverRun>,
    /// Case k: the topic, the command and nsq-pub's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cli: Option<CliRun>,
}

impl Outcome {
    /// An outcome with nothing measured yet.
    /// The binary `client` runs in the command-line `case`, one of `tools` (this project's tool
    /// and nsq's). When it cannot run, the outcome records why (the plan left it out, `client`
    /// is neither tool, or the binary is `missing`) and the answer is `None`.
    pub(super) fn cli_binary(
        &mut self,
        plan: &Plan,
        (case, client, n): (Case, Client, u64),
        tools: [(Client, &Option<PathBuf>); 2],
        missing: &str,
    ) -> Option<PathBuf> {
        let why = if let Some(why) = plan.unavailable.get(&client) {
            why.clone()
        } else {
            match tools.iter().find(|(tool, _)| *tool == client) {
                Some((_, Some(bin))) => return Some(bin.clone()),
                Some((_, None)) => missing.to_owned(),
                None => format!("n/a ({} and {} only)", tools[0].0.name(), tools[1].0.name()),
            }
        };
        self.result = Some(RunResult::unsupported(client.name(), case.arg(), n, &why));
        None
    }

    pub(super) fn new(round: u32, case: Case, client: Client) -> Self {
        Self {
            round,
            case: case.id(),
            client: client.name(),
            result: None,
            failure: None,
            topic_depth: None,
            backend_depth: None,
            mismatch: None,
            nsqd_cpu_s: None,
            process_s: 0.0,
            failover: None,
            cli: None,
        }
    }

    /// The result, when the run succeeded and the client could do the case.
    pub(crate) fn measured(&self) -> Option<&RunResult> {
        self.result.as_ref().filter(|r| r.unsupported.is_none())
    }

    /// Why the client cannot do the case, if it said so.
    pub(crate) fn unsupported(&self) -> Option<&str> {
        self.result.as_ref()?.unsupported.as_deref()
    }
}

/// What the suite records of a case k run besides the result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CliRun {
    /// The topic the run published to (created before it, deleted after it).
    pub(crate) topic: String,
    /// The command line, with the file of lines.
    pub(crate) command: String,
    /// nsq-pub's `--report-json`, as it wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) report: Option<Value>,
}
