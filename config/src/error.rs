//! Configuration errors.
//!
//! Every error about a value names the dotted key (`sequencer.block_time`)
//! and, when known, the layer the value came from, because with four layers
//! stacked the operator otherwise has to guess which one to fix.

use std::fmt;
use std::path::PathBuf;

/// Result of configuration loading and validation.
pub type ConfigResult<T> = Result<T, ConfigError>;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file was named explicitly but is not there.
    #[error("config file {} does not exist", .path.display())]
    FileNotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A value has the wrong type, does not parse, or is out of range.
    #[error("invalid value for {key}{}: {message}", FromLayer(.layer))]
    InvalidValue {
        /// Dotted key, e.g. `rpc.port`.
        key: String,
        /// The layer that set the value, e.g. `environment variable
        /// LANES_RPC__PORT`; `None` when validating a bare [`LanesConfig`]
        /// whose origin is unknown.
        ///
        /// [`LanesConfig`]: crate::LanesConfig
        layer: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// A key that no section has, usually a typo.
    #[error("unknown key {key}{}; expected one of: {expected}", FromLayer(.layer))]
    UnknownKey {
        /// Dotted key, e.g. `rpc.prot`.
        key: String,
        /// The layer that set the key.
        layer: Option<String>,
        /// The keys that would have been accepted at that place.
        expected: String,
    },
    /// A layer as a whole could not be read, e.g. a TOML syntax error or an
    /// unreadable file.
    #[error("cannot read configuration{}: {message}", FromLayer(.layer))]
    Source {
        /// The layer that failed.
        layer: Option<String>,
        /// The underlying error.
        message: String,
    },
    /// Several of the above at once, so one run shows every mistake.
    #[error("{} configuration errors:{}", .0.len(), Bulleted(.0))]
    Multiple(Vec<ConfigError>),
    /// The configuration could not be rendered as TOML.
    #[error("cannot render the configuration as TOML: {0}")]
    Render(#[from] toml::ser::Error),
}

impl ConfigError {
    /// Folds a list of errors into one: the error itself when there is one,
    /// [`ConfigError::Multiple`] otherwise. `None` when the list is empty.
    pub(crate) fn from_list(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }

    /// The dotted key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. } | ConfigError::UnknownKey { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }

    /// The layer the offending value came from, if known.
    pub fn layer(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { layer, .. }
            | ConfigError::UnknownKey { layer, .. }
            | ConfigError::Source { layer, .. } => layer.as_deref(),
            ConfigError::FileNotFound { .. }
            | ConfigError::Multiple(_)
            | ConfigError::Render(_) => None,
        }
    }
}

struct FromLayer<'a>(&'a Option<String>);

impl fmt::Display for FromLayer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(layer) => write!(f, " from {layer}"),
            None => Ok(()),
        }
    }
}

struct Bulleted<'a>(&'a [ConfigError]);

impl fmt::Display for Bulleted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}
