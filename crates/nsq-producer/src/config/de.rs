//! Deserialization of a [`ProducerConfig`] from a map of option names to values (a TOML, JSON
//! or YAML section), through [`ProducerConfig::set`]: every error names the option it is
//! about, so that a configuration file's error points at the key.

use nsq_conn::ConfigError;
use nsq_conn::by_name::SetByName;

use super::ProducerConfig;

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for ProducerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        nsq_conn::by_name::deserialize(deserializer, "a map of go-nsq option names to values")
    }
}

impl SetByName for ProducerConfig {
    fn option_name(option: &str) -> Result<&'static str, ConfigError> {
        super::go_nsq::canonical_name(option)
    }

    fn set_by_name(&mut self, option: &'static str, text: &str) -> Result<(), ConfigError> {
        self.set(option, text)
    }
}
