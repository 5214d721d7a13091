//! The four configuration layers as figment providers, and the translation
//! of figment's errors into [`ConfigError`]s that name key and layer.
//!
//! Each layer is wrapped in [`Layer`] so its metadata carries a name of our
//! choosing: figment's own names ("`LANES_` environment variable(s)", a Rust
//! type name for serialized values) do not tell the operator which variable
//! or flag to fix.

use std::path::Path;

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};

use crate::{ConfigError, LanesConfig};

/// Prefix of environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "LANES_";
/// Separator between the section and the key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

const DEFAULTS_NAME: &str = "built-in defaults";
const FILE_NAME: &str = "config file";
const ENV_NAME: &str = "environment variable";
const CLI_NAME: &str = "command-line flags";

/// A provider whose metadata we choose.
struct Layer<P> {
    inner: P,
    metadata: Metadata,
}

impl<P: Provider> Provider for Layer<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        self.inner.data()
    }
}

/// Stacks the layers, lowest precedence first.
pub(crate) fn figment(
    file: Option<&Path>,
    preset: Option<(&'static str, serde_json::Value)>,
    cli: serde_json::Value,
) -> Figment {
    let mut figment = Figment::new().merge(Layer {
        inner: Serialized::defaults(LanesConfig::default()),
        metadata: Metadata::named(DEFAULTS_NAME),
    });

    // A preset (such as `--dev`) changes defaults, so it sits right above them and
    // below everything the operator wrote.
    if let Some((name, values)) = preset
        && let serde_json::Value::Object(values) = strip_nulls(values)
    {
        for (key, value) in values {
            figment = figment.merge(Layer {
                inner: Serialized::default(&key, value),
                metadata: Metadata::named(name),
            });
        }
    }

    if let Some(path) = file {
        // `file_exact` because `Toml::file` searches parent directories for a
        // relative path, which would pick up a stray file the operator never
        // named.
        figment = figment.merge(Layer {
            inner: Toml::file_exact(path),
            metadata: Metadata::from(FILE_NAME, Source::File(path.to_owned())),
        });
    }

    figment = figment.merge(Layer {
        // Only variables with a section separator are keys: every key lives
        // in a section, and the binary's own `LANES_*` variables (such as
        // the config file path) must not trip `deny_unknown_fields`.
        inner: Env::prefixed(ENV_PREFIX)
            .filter(|key| key.as_str().contains(ENV_SEPARATOR))
            .split(ENV_SEPARATOR),
        metadata: Metadata::named(ENV_NAME)
            .interpolater(|_: &Profile, keys: &[&str]| env_var_name(keys)),
    });

    match strip_nulls(cli) {
        serde_json::Value::Null => {}
        serde_json::Value::Object(flags) => {
            // One provider per entry so a dotted key (`"rpc.port"`) nests like
            // a nested object (`{"rpc": {"port": ..}}`) does.
            for (key, value) in flags {
                figment = figment.merge(Layer {
                    inner: Serialized::default(&key, value),
                    metadata: Metadata::named(CLI_NAME),
                });
            }
        }
        // Not a map: let figment report the type error against this layer.
        other => {
            figment = figment.merge(Layer {
                inner: Serialized::defaults(other),
                metadata: Metadata::named(CLI_NAME),
            });
        }
    }

    figment
}

/// `["rpc", "port"]` -> `LANES_RPC__PORT`.
fn env_var_name<K: AsRef<str>>(keys: &[K]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| k.as_ref().to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", keys.join(ENV_SEPARATOR))
}

/// Drops `null`s so a CLI struct serialised with unset `Option` flags does
/// not override lower layers with nothing.
fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Names the layer a value at `path` came from, e.g. `environment variable
/// LANES_RPC__PORT` or `config file lanes.toml`.
pub(crate) fn describe(metadata: &Metadata, path: &[&str]) -> String {
    if let Some(Source::File(file)) = &metadata.source {
        return format!("{FILE_NAME} {}", file.display());
    }
    if metadata.name == ENV_NAME && !path.is_empty() {
        return format!("{ENV_NAME} {}", env_var_name(path));
    }
    metadata.name.to_string()
}

/// The layer that set `key` in `figment`, if any did.
pub(crate) fn layer_of(figment: &Figment, key: &str) -> Option<String> {
    let metadata = figment.find_metadata(key)?;
    let path: Vec<&str> = key.split('.').collect();
    Some(describe(metadata, &path))
}

/// Translates every error figment reports into a [`ConfigError`].
pub(crate) fn translate(figment: &Figment, error: figment::Error) -> ConfigError {
    let errors = error
        .into_iter()
        .map(|e| translate_one(figment, e))
        .collect();
    ConfigError::from_list(errors).unwrap_or_else(|| ConfigError::Source {
        layer: None,
        message: "unknown error".to_owned(),
    })
}

fn translate_one(figment: &Figment, error: figment::Error) -> ConfigError {
    let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            let mut full: Vec<&str> = path.clone();
            if full.last() != Some(&field.as_str()) {
                full.push(field);
            }
            let key = full.join(".");
            // The error is tagged with the enclosing table, which the
            // defaults created; the stray key itself knows its layer.
            let layer = layer_of(figment, &key)
                .or_else(|| error.metadata.as_ref().map(|md| describe(md, &full)));
            ConfigError::UnknownKey {
                key,
                layer,
                expected: expected.join(", "),
            }
        }
        // figment's own wording nests backticks: "expected `one of `a`, `b``".
        Kind::UnknownVariant(actual, expected) if !path.is_empty() => ConfigError::InvalidValue {
            key: path.join("."),
            layer: error.metadata.as_ref().map(|md| describe(md, &path)),
            message: format!(
                "unknown value `{actual}`; expected one of: {}",
                expected.join(", ")
            ),
        },
        kind if path.is_empty() => ConfigError::Source {
            layer: error.metadata.as_ref().map(|md| describe(md, &path)),
            message: kind.to_string(),
        },
        kind => {
            let key = path.join(".");
            let layer = error
                .metadata
                .as_ref()
                .map(|md| describe(md, &path))
                .or_else(|| layer_of(figment, &key));
            ConfigError::InvalidValue {
                key,
                layer,
                message: kind.to_string(),
            }
        }
    }
}
