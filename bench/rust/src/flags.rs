//! Command-line flags: `--name value` pairs and bare `--switch`es, with typed getters.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Parsed flags. Each getter removes what it reads, so that [`Flags::finish`] can reject
/// unknown flags.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Flags {
    /// Parses `args`. A flag listed in `switches` takes no value; every other flag takes one,
    /// either as the next argument or after `=`.
    pub(crate) fn parse(args: &[String], switches: &[&str]) -> Result<Self, String> {
        let mut flags = Self::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`"));
            };
            if let Some((name, value)) = name.split_once('=') {
                flags.values.insert(name.to_owned(), value.to_owned());
            } else if switches.contains(&name) {
                flags.switches.push(name.to_owned());
            } else {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                flags.values.insert(name.to_owned(), value.clone());
            }
        }
        Ok(flags)
    }

    /// Whether the bare switch `--name` was given.
    pub(crate) fn switch(&mut self, name: &str) -> bool {
        let before = self.switches.len();
        self.switches.retain(|s| s != name);
        before != self.switches.len()
    }

    /// The raw value of `--name`, if given.
    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// The value of `--name` parsed as `T`, or `default`.
    pub(crate) fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.values.remove(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| format!("--{name}: cannot parse {value:?}")),
        }
    }

    /// Fails on any flag no getter asked for.
    pub(crate) fn finish(self) -> Result<(), String> {
        let unknown: Vec<String> = self
            .values
            .into_keys()
            .chain(self.switches)
            .map(|name| format!("--{name}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown option(s): {}", unknown.join(", ")))
        }
    }
}

/// The options every client subcommand takes.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// nsqd's TCP address.
    pub(crate) addr: String,
    pub(crate) topic: String,
    /// Messages to publish.
    pub(crate) n: u64,
    /// Body size in bytes.
    pub(crate) size: usize,
    /// `a`, `b`, `c`, `cstar` or `d`.
    pub(crate) case: String,
    /// Concurrent callers in case b.
    pub(crate) callers: u64,
    /// Most unanswered publishes in case c.
    pub(crate) window: usize,
    /// Messages per MPUB in case d.
    pub(crate) batch: usize,
    /// Stop publishing after this long; `None` runs to `n`.
    pub(crate) time_limit: Option<Duration>,
    /// The pid of the nsqd at `addr`, which cases h and i stop and resume; in cases j and l,
    /// the pid of the nsqd at `addrs[kill_index]`, which is killed (j) or stopped for 6 s (l) a
    /// third of the way in.
    pub(crate) nsqd_pid: Option<u32>,
    /// The failover cases' nsqd (`--addrs a,b,c`); `[addr]` when not given.
    pub(crate) addrs: Vec<String>,
    /// The index in `addrs` of the nsqd killed in case j, or stopped in case l.
    pub(crate) kill_index: usize,
}

impl ClientOptions {
    /// Reads the client options from `flags`; an option not given takes the default written here.
    pub(crate) fn from_flags(flags: &mut Flags) -> Result<Self, String> {
        let addr: String = flags.get("addr", "127.0.0.1:4150".to_owned())?;
        let addrs = match flags.string("addrs") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec![addr.clone()],
        };
        let options = Self {
            addr,
            topic: flags.get("topic", "bench".to_owned())?,
            n: flags.get("n", 200_000)?,
            size: flags.get("size", 100)?,
            case: flags.get("case", "a".to_owned())?,
            callers: flags.get("callers", 16)?,
            window: flags.get("window", 1000)?,
            batch: flags.get("batch", 100)?,
            time_limit: match flags.get("time-limit", 0.0_f64)? {
                secs if secs > 0.0 => Some(Duration::from_secs_f64(secs)),
                _ => None,
            },
            nsqd_pid: flags
                .get("nsqd-pid", 0_u32)
                .map(|pid| Some(pid).filter(|&p| p > 0))?,
            addrs,
            kill_index: flags.get("kill-index", 1)?,
        };
        if options.n == 0
            || options.size == 0
            || options.callers == 0
            || options.window == 0
            || options.batch == 0
        {
            return Err("--n, --size, --callers, --window and --batch must be at least 1".into());
        }
        if options.addrs.is_empty() {
            return Err("--addrs names no address".into());
        }
        Ok(options)
    }

    /// The moment the time limit ends, counted from now.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.time_limit.map(|limit| Instant::now() + limit)
    }
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_switches_and_unknowns() {
        let mut flags = Flags::parse(
            &args(&["--n", "5", "--quick", "--size=7", "--x", "1"]),
            &["quick"],
        )
        .unwrap();
        assert!(flags.switch("quick"));
        assert_eq!(flags.get("n", 1_u64).unwrap(), 5);
        assert_eq!(flags.get("size", 1_usize).unwrap(), 7);
        assert_eq!(flags.get("runs", 3_u32).unwrap(), 3);
        assert_eq!(flags.finish().unwrap_err(), "unknown option(s): --x");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Flags::parse(&args(&["--n"]), &[]).is_err());
        assert!(Flags::parse(&args(&["n"]), &[]).is_err());
        let mut flags = Flags::parse(&args(&["--n", "many"]), &[]).unwrap();
        assert!(flags.get("n", 1_u64).is_err());
    }
}
