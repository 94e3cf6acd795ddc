//! `--require-json-field`, `--require-json-value` and `--whitelist-json-field`: which JSON
//! messages are forwarded, and what of them.

use bytes::Bytes;
use serde_json::{Map, Value};

/// What a message becomes.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Forward this body.
    Forward(Bytes),
    /// Not forwarded (finished at the source), and why.
    Filtered(&'static str),
}

/// The JSON filter; with no JSON flag, every message is forwarded as it is.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    field: Option<String>,
    value: Option<Wanted>,
    whitelist: Vec<String>,
}

/// The value `--require-json-value` asks for: a string always matches a string equal to it;
/// when it reads as a number, it also matches a number equal to it.
#[derive(Debug)]
struct Wanted {
    text: String,
    number: Option<f64>,
}

impl Filter {
    /// The filter for the flags.
    pub(crate) fn new(field: Option<&str>, value: Option<&str>, whitelist: &[String]) -> Self {
        Self {
            field: field.filter(|f| !f.is_empty()).map(str::to_owned),
            value: value.filter(|v| !v.is_empty()).map(|v| Wanted {
                text: v.to_owned(),
                number: v.parse().ok(),
            }),
            whitelist: whitelist.to_vec(),
        }
    }

    /// Whether messages are read as JSON at all.
    pub(crate) fn is_active(&self) -> bool {
        self.field.is_some() || !self.whitelist.is_empty()
    }

    /// What `body` becomes. A body that is not a JSON object is not forwarded, as nsq_to_nsq
    /// does; nor is one without the required field (nsq_to_nsq requeues that one when a value
    /// is required, for ever).
    pub(crate) fn judge(&self, body: &Bytes) -> Verdict {
        if !self.is_active() {
            return Verdict::Forward(body.clone());
        }
        let Ok(object) = serde_json::from_slice::<Map<String, Value>>(body) else {
            return Verdict::Filtered("not a JSON object");
        };
        if let Some(field) = &self.field {
            let Some(found) = object.get(field) else {
                return Verdict::Filtered("without the required field");
            };
            if let Some(wanted) = &self.value {
                let matches = match found {
                    Value::String(s) => *s == wanted.text,
                    Value::Number(n) => wanted.number.is_some() && n.as_f64() == wanted.number,
                    _ => false,
                };
                if !matches {
                    return Verdict::Filtered("without the required value");
                }
            }
        }
        if self.whitelist.is_empty() {
            return Verdict::Forward(body.clone());
        }
        let mut kept = Map::new();
        for key in &self.whitelist {
            if let Some(value) = object.get(key) {
                kept.insert(key.clone(), integral(value.clone()));
            }
        }
        match serde_json::to_vec(&kept) {
            Ok(json) => Verdict::Forward(Bytes::from(json)),
            Err(_) => Verdict::Filtered("not a JSON object"),
        }
    }
}

/// A float with no fractional part as an integer, as nsq_to_nsq writes it (`1.0` becomes `1`).
fn integral(value: Value) -> Value {
    if let Value::Number(n) = &value {
        if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
            #[allow(clippy::cast_possible_truncation)]
            let i = f as i64;
            if i as f64 == f {
                return Value::from(i);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(filter: &Filter, body: &str) -> Verdict {
        filter.judge(&Bytes::from(body.to_owned()))
    }

    fn forward(body: &str) -> Verdict {
        Verdict::Forward(Bytes::from(body.to_owned()))
    }

    #[test]
    fn without_json_flags_every_body_passes_untouched() {
        let filter = Filter::new(None, None, &[]);
        assert_eq!(judge(&filter, "not json"), forward("not json"));
    }

    #[test]
    fn required_field_and_value() {
        let filter = Filter::new(Some("kind"), Some("click"), &[]);
        assert_eq!(
            judge(&filter, r#"{"kind":"click"}"#),
            forward(r#"{"kind":"click"}"#)
        );
        assert!(matches!(
            judge(&filter, r#"{"kind":"view"}"#),
            Verdict::Filtered(_)
        ));
        assert!(matches!(
            judge(&filter, r#"{"other":1}"#),
            Verdict::Filtered(_)
        ));
        assert!(matches!(judge(&filter, "[1,2]"), Verdict::Filtered(_)));
        assert!(matches!(judge(&filter, "nope"), Verdict::Filtered(_)));
        let numeric = Filter::new(Some("n"), Some("2"), &[]);
        assert_eq!(judge(&numeric, r#"{"n":2.0}"#), forward(r#"{"n":2.0}"#));
        assert_eq!(judge(&numeric, r#"{"n":"2"}"#), forward(r#"{"n":"2"}"#));
        assert!(matches!(
            judge(&numeric, r#"{"n":3}"#),
            Verdict::Filtered(_)
        ));
        let present = Filter::new(Some("n"), None, &[]);
        assert_eq!(judge(&present, r#"{"n":null}"#), forward(r#"{"n":null}"#));
    }

    #[test]
    fn whitelist_keeps_the_named_fields() {
        let filter = Filter::new(
            None,
            None,
            &["b".to_owned(), "a".to_owned(), "z".to_owned()],
        );
        assert_eq!(
            judge(&filter, r#"{"a":1.0,"b":"x","c":[1]}"#),
            forward(r#"{"a":1,"b":"x"}"#)
        );
    }
}
