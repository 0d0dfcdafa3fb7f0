use std::collections::HashMap;

/// Settings read from `key = value` lines.
pub struct Config {
    values: HashMap<String, String>,
}

#[derive(Debug, PartialEq)]
pub enum ConfigError {
    MissingEquals(usize),
    EmptyKey(usize),
}

pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let mut values = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigError::MissingEquals(number + 1));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::EmptyKey(number + 1));
        }
        values.insert(key.to_string(), value.trim().to_string());
    }
    Ok(Config { values })
}

impl Config {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn get_or(&self, key: &str, default: &str) -> String {
        match self.get(key) {
            Some(value) => value.to_string(),
            None => default.to_string(),
        }
    }
}
