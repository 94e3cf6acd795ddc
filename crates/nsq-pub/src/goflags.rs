//! to_nsq's flag spellings: Go's `flag` package takes a long flag with one dash or two, its
//! value after `=` or as the next argument, and a boolean flag's value only after `=`. This
//! rewrites every such spelling into the one clap parses (`--name=value`, or `--name` for a
//! boolean that is true) before clap sees the arguments.

use std::ffi::OsString;

use clap::Command;

/// The arguments (without the program name) with Go-style long flags rewritten for clap.
///
/// A single-dash argument of one letter is left alone (`-q`, `-v`, `-h`, `-V` are nsq-pub's
/// short flags), as is anything after `--` and any name clap does not know (so that clap reports
/// it). A flag that takes a value and is given as `-name value` takes the next argument as its
/// value whatever it looks like, as Go does (`-rate -1`).
///
/// # Errors
///
/// A boolean flag given a value Go would refuse (`-quiet=maybe`).
pub(crate) fn normalise(
    command: &Command,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let (body, single) = match text.strip_prefix("--") {
            Some(body) => (body, false),
            None => match text.strip_prefix('-') {
                Some(body) => (body, true),
                None => {
                    out.push(arg);
                    continue;
                }
            },
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let known = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
            .map(|a| a.get_action().takes_values());
        let Some(takes_value) = known.filter(|_| !(single && name.len() == 1)) else {
            out.push(arg);
            continue;
        };
        if takes_value {
            let value = match value {
                Some(value) => OsString::from(value),
                None => match args.next() {
                    Some(value) => value,
                    // clap says that the value is missing.
                    None => {
                        out.push(format!("--{name}").into());
                        continue;
                    }
                },
            };
            let mut joined = OsString::from(format!("--{name}="));
            joined.push(value);
            out.push(joined);
        } else {
            let on = match value {
                None => true,
                Some(value) => go_bool(value)
                    .ok_or_else(|| format!("invalid boolean value {value:?} for flag -{name}"))?,
            };
            if on {
                out.push(format!("--{name}").into());
            }
        }
    }
    Ok(out)
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn command() -> Command {
        Command::new("t")
            .arg(Arg::new("topic").long("topic"))
            .arg(Arg::new("rate").long("rate"))
            .arg(
                Arg::new("quiet")
                    .long("quiet")
                    .short('q')
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("files").num_args(0..))
    }

    fn norm(args: &[&str]) -> Result<Vec<String>, String> {
        normalise(&command(), args.iter().map(OsString::from)).map(|v| {
            v.into_iter()
                .map(|a| a.into_string().expect("utf-8"))
                .collect()
        })
    }

    #[test]
    fn every_go_spelling_becomes_clap_s() {
        for spelling in [
            &["-topic=x"][..],
            &["-topic", "x"],
            &["--topic=x"],
            &["--topic", "x"],
        ] {
            assert_eq!(
                norm(spelling),
                Ok(vec!["--topic=x".to_owned()]),
                "{spelling:?}"
            );
        }
        assert_eq!(norm(&["-rate", "-1"]), Ok(vec!["--rate=-1".to_owned()]));
        assert_eq!(norm(&["-topic="]), Ok(vec!["--topic=".to_owned()]));
    }

    #[test]
    fn booleans_take_a_value_only_after_equals() {
        assert_eq!(norm(&["-quiet"]), Ok(vec!["--quiet".to_owned()]));
        assert_eq!(norm(&["--quiet=true"]), Ok(vec!["--quiet".to_owned()]));
        assert_eq!(norm(&["-quiet=0"]), Ok(vec![]));
        assert_eq!(
            norm(&["-quiet", "true"]),
            Ok(vec!["--quiet".to_owned(), "true".to_owned()])
        );
        assert!(norm(&["-quiet=maybe"]).unwrap_err().contains("maybe"));
    }

    #[test]
    fn short_flags_unknown_names_and_what_follows_the_end_are_left_alone() {
        assert_eq!(
            norm(&["-q", "-", "-nope", "file", "--", "-topic"]),
            Ok(["-q", "-", "-nope", "file", "--", "-topic"]
                .map(str::to_owned)
                .to_vec())
        );
        assert_eq!(norm(&["-topic"]), Ok(vec!["--topic".to_owned()]));
    }
}
