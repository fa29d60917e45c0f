//! Client properties with Kafka's names (`bootstrap.servers`, `linger.ms`, ...), as a Java or
//! librdkafka user writes them, with typed getters that name the key in their errors.

use crate::error::{ClientError, Result};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Properties {
    values: BTreeMap<String, String>,
}

impl Properties {
    pub fn new() -> Properties {
        Properties::default()
    }

    /// Sets a property (builder style).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Properties {
        self.insert(key, value);
        self
    }

    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.trim().to_string(), value.into().trim().to_string());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Reads `key=value` lines (a Java properties file: `#`/`!` comments, blank lines ignored).
    pub fn parse(text: &str) -> Result<Properties> {
        let mut p = Properties::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once(['=', ':']) else {
                return Err(ClientError::Config {
                    key: line.to_string(),
                    message: format!("line {} is not key=value", n + 1),
                });
            };
            p.insert(k, v);
        }
        Ok(p)
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn parsed<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ClientError::Config {
                key: key.to_string(),
                message: format!("'{v}' is not a valid {}", std::any::type_name::<T>()),
            }),
        }
    }

    pub fn millis(&self, key: &str, default_ms: u64) -> Result<Duration> {
        Ok(Duration::from_millis(self.parsed(key, default_ms)?))
    }

    pub fn boolean(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ClientError::Config { key: key.into(), message: format!("'{v}' is not true or false") }),
        }
    }

    /// `bootstrap.servers`: comma-separated host:port list, required.
    pub fn bootstrap_servers(&self) -> Result<Vec<String>> {
        let raw = self.get("bootstrap.servers").unwrap_or("");
        let servers: Vec<String> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(strip_scheme).collect();
        if servers.is_empty() {
            return Err(ClientError::Config {
                key: "bootstrap.servers".into(),
                message: "required, e.g. localhost:9092".into(),
            });
        }
        for s in &servers {
            if s.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
                return Err(ClientError::Config {
                    key: "bootstrap.servers".into(),
                    message: format!("'{s}' is not host:port"),
                });
            }
        }
        Ok(servers)
    }
}

/// `PLAINTEXT://host:port` → `host:port`.
fn strip_scheme(s: &str) -> String {
    s.split_once("://").map_or(s, |(_, rest)| rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_name_the_key() {
        let p = Properties::parse("# comment\nlinger.ms=5\nacks: all\nbootstrap.servers=PLAINTEXT://a:1, b:2\n")
            .expect("parse");
        assert_eq!(p.millis("linger.ms", 0).expect("ms"), Duration::from_millis(5));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.bootstrap_servers().expect("servers"), vec!["a:1", "b:2"]);
        let bad = Properties::new().set("linger.ms", "soon");
        assert!(bad.millis("linger.ms", 0).expect_err("invalid").to_string().contains("linger.ms"));
        assert!(Properties::new().bootstrap_servers().is_err());
    }
}
