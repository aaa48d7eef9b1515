//! Errors a user can cause: bad configs, catalogs, traces and output folders.
//!
//! Every variant names the file, the field or column, and the offending value, so that the message alone
//! tells a user what to fix. `main` prints the error chain and exits non-zero; nothing here panics.

use std::path::PathBuf;

/// An error caused by input the user supplied (or by the filesystem), with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        path: PathBuf,
        // Shown in the message and not chained as a source, so it is printed once.
        err: std::io::Error,
    },
    /// A YAML file is not valid YAML.
    #[error("{path}: invalid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    /// A config field has a value of the wrong type, an unknown key, or a missing required key.
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A config value has the right type but is out of range or contradicts another setting.
    #[error("{path}: field `{field}` = {value}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        value: String,
        message: String,
    },
    /// A `--set key=value` override is malformed or names a key that does not exist.
    #[error("--set {expr}: {message}")]
    Override { expr: String, message: String },
    /// A CSV file (trace, profile, power log) is malformed.
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
    /// A CSV column is missing or holds a bad value.
    #[error("{path}: column `{column}`{row}: {message}", row = row.map(|r| format!(", row {r}")).unwrap_or_default())]
    Column {
        path: PathBuf,
        column: String,
        /// 1-based data row (header excluded), when the problem is a single cell.
        row: Option<usize>,
        message: String,
    },
    /// The output folder cannot be used.
    #[error("{path}: {message}")]
    Output { path: PathBuf, message: String },
    /// One run of a sweep or a capacity search failed; `run` names it and its parameters.
    #[error("{run}: {error}")]
    Run { run: String, error: Box<Error> },
    /// Simulated time would leave the range integer nanoseconds hold: a duration set by the config or a
    /// profile is too large. The message says where it happened and what to check.
    #[error("simulated time out of range: {0}")]
    Horizon(String),
    /// The simulation reached a state its invariants forbid. This is a bug in simwatt, reported rather
    /// than hidden.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }

    /// An [`Error::Invalid`] for a config field.
    pub fn invalid(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            path: path.into(),
            field: field.into(),
            value: shown_value(&value.to_string()),
            message: message.into(),
        }
    }
}

/// Longest value an error message repeats whole.
pub const MAX_SHOWN_VALUE: usize = 120;

/// A value as an error message shows it: a number that prints long (`1e-300` written out in full) in
/// scientific notation, and anything longer than [`MAX_SHOWN_VALUE`] characters cut, with its length
/// said, so a huge value is not echoed whole.
pub fn shown_value(v: &str) -> String {
    if v.len() > 24 {
        if let Ok(x) = v.parse::<f64>() {
            return format!("{x:e}");
        }
    }
    if v.chars().count() > MAX_SHOWN_VALUE {
        let head: String = v.chars().take(MAX_SHOWN_VALUE).collect();
        return format!("{head}... ({} characters)", v.chars().count());
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shown_short() {
        assert_eq!(shown_value("1e-300"), "1e-300");
        assert_eq!(shown_value(&1e-300f64.to_string()), "1e-300");
        assert_eq!(shown_value(&1e300f64.to_string()), "1e300");
        assert_eq!(shown_value("2.5"), "2.5");
        let big = "x".repeat(20_000_000);
        let s = shown_value(&big);
        assert!(s.len() < 200 && s.ends_with("(20000000 characters)"), "{s}");
    }
}
