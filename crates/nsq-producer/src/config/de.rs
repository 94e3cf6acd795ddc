//! Deserialization of configurations from a map of option names to values (a TOML, JSON or
//! YAML section), through their `set`: every error names the option it is about, so that a
//! configuration file's error points at the key.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ProducerConfig;

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for ProducerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ByName::<Self>::new(
            "a map of go-nsq option names to values",
        ))
    }
}

/// A configuration set option by option, by name.
pub(crate) trait SetByName: Default {
    /// Sets `option` to `value`; `value` is a list only for options that take several values.
    fn set_value(&mut self, option: &str, value: OptionValue) -> Result<(), nsq_conn::ConfigError>;
}

impl SetByName for ProducerConfig {
    fn set_value(&mut self, option: &str, value: OptionValue) -> Result<(), nsq_conn::ConfigError> {
        let name = super::go_nsq::canonical_name(option)?;
        self.set(name, &value.single(name)?)
    }
}

/// Visits a map of option names to values, setting each on a default configuration.
pub(crate) struct ByName<C> {
    expecting: &'static str,
    config: std::marker::PhantomData<C>,
}

impl<C> ByName<C> {
    pub(crate) fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            config: std::marker::PhantomData,
        }
    }
}

impl<'de, C: SetByName> Visitor<'de> for ByName<C> {
    type Value = C;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<C, A::Error> {
        let mut config = C::default();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value_seed(SetOption {
                name: &name,
                config: &mut config,
            })?;
        }
        Ok(config)
    }
}

/// Deserializes the value of the option `name` and sets it, so that an error is raised while
/// the value is read: a format that knows where the value is (TOML's line and column) shows it.
struct SetOption<'a, C> {
    name: &'a str,
    config: &'a mut C,
}

impl<'de, C: SetByName> DeserializeSeed<'de> for SetOption<'_, C> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let value = deserializer.deserialize_any(ValueOf(self.name))?;
        self.config
            .set_value(self.name, value)
            .map_err(de::Error::custom)
    }
}

/// One option's value: text as [`ProducerConfig::set`] takes it, or a list of texts.
pub(crate) enum OptionValue {
    Text(String),
    List(Vec<String>),
}

impl OptionValue {
    /// The text of an option that takes one value.
    pub(crate) fn single(self, option: &'static str) -> Result<String, nsq_conn::ConfigError> {
        match self {
            Self::Text(text) => Ok(text),
            Self::List(_) => Err(nsq_conn::ConfigError::InvalidValue {
                option,
                value: "a list".to_owned(),
                expected: "one value: a string, a number or a boolean",
            }),
        }
    }
}

/// Visits the value of the option named `.0`, naming it in a type error.
struct ValueOf<'a>(&'a str);

impl<'de> Visitor<'de> for ValueOf<'_> {
    type Value = OptionValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a string, a number or a boolean (or a list of strings) for option `{}`",
            self.0
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionValue, E> {
        Ok(OptionValue::Text(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OptionValue, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = seq.next_element_seed(ItemOf(self.0))? {
            list.push(item);
        }
        Ok(OptionValue::List(list))
    }
}

/// One string of a list value.
struct ItemOf<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for ItemOf<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for ItemOf<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string in the list of option `{}`", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}
