//! Deserialization of a configuration from a map of option names to values (a TOML, JSON or
//! YAML section), through its setter by name: every error names the option it is about, so
//! that a configuration file's error points at the key.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::ConfigError;

/// A configuration that is set option by option, by name; [`deserialize`] builds one from a
/// map of names to values.
///
/// ```
/// use nsq_conn::ConfigError;
/// use nsq_conn::by_name::{SetByName, Value};
///
/// #[derive(Default)]
/// struct Settings {
///     retries: u32,
/// }
///
/// impl SetByName for Settings {
///     fn option_name(option: &str) -> Result<&'static str, ConfigError> {
///         nsq_conn::by_name::find(&["retries"], option)
///     }
///     fn set_by_name(&mut self, option: &'static str, text: &str) -> Result<(), ConfigError> {
///         self.retries = Value { option, text }.small("0 to 4294967295")?;
///         Ok(())
///     }
/// }
///
/// impl<'de> serde::Deserialize<'de> for Settings {
///     fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
///         nsq_conn::by_name::deserialize(deserializer, "a map of option names to values")
///     }
/// }
///
/// let settings: Settings = serde_json::from_str(r#"{"retries": 3}"#).unwrap();
/// assert_eq!(settings.retries, 3);
/// let err = serde_json::from_str::<Settings>(r#"{"retries": "many"}"#).err().unwrap();
/// assert!(err.to_string().contains("retries"));
/// ```
pub trait SetByName: Default {
    /// The canonical name of `option` (`_` for `-`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownOption`] for a name the configuration does not know.
    fn option_name(option: &str) -> Result<&'static str, ConfigError>;

    /// Sets the option named `option` (a name [`option_name`](Self::option_name) gave) to
    /// the value `text`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the option, if the value is refused.
    fn set_by_name(&mut self, option: &'static str, text: &str) -> Result<(), ConfigError>;

    /// Sets `option` to a deserialized value. By default a list is refused: every option takes
    /// one value. A configuration with options that take lists overrides this.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the option: unknown, refused, or given a list.
    fn set_value(&mut self, option: &str, value: OptionValue) -> Result<(), ConfigError> {
        let name = Self::option_name(option)?;
        self.set_by_name(name, &value.single(name)?)
    }
}

/// Deserializes a configuration from a map of option names to values, setting each on a
/// default configuration in the order given. `expecting` says what the map is, for the error
/// about anything else.
///
/// # Errors
///
/// `D::Error` naming the option at fault, as [`SetByName`] reports it.
pub fn deserialize<'de, C: SetByName, D: Deserializer<'de>>(
    deserializer: D,
    expecting: &'static str,
) -> Result<C, D::Error> {
    deserializer.deserialize_map(ByName::<C>::new(expecting))
}

/// Visits a map of option names to values, setting each on a default configuration.
pub struct ByName<C> {
    expecting: &'static str,
    config: std::marker::PhantomData<C>,
}

impl<C> ByName<C> {
    /// A visitor whose error for anything but a map says it expected `expecting`.
    pub fn new(expecting: &'static str) -> Self {
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

/// One option's value as deserialized: text as a setter by name takes it (a number or a
/// boolean in its usual text form), or a list of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// One value.
    Text(String),
    /// A list of strings.
    List(Vec<String>),
}

impl OptionValue {
    /// The text of an option that takes one value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] naming `option` if the value is a list.
    pub fn single(self, option: &'static str) -> Result<String, ConfigError> {
        match self {
            Self::Text(text) => Ok(text),
            Self::List(_) => Err(ConfigError::InvalidValue {
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
