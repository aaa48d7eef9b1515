//! Where a config's files are found: the shipped data directory (Vidur profiles, power and engine
//! profiles, regions, traces) and the paths a config names.
//!
//! Input: the config file's path, its optional `data_dir`, the `SIMWATT_DATA_DIR` environment variable,
//! the running executable's location. Output: the data directory a run uses and every relative path
//! of the config anchored to the first place it exists. It reads directory listings only; it may
//! import nothing above the foundation modules.
//!
//! The data directory is the first of, in order: the config's `data_dir` (relative to the config
//! file), `$SIMWATT_DATA_DIR`, the config file's folder or the nearest folder above it that holds
//! `profiles/power` (a repository checkout), the current directory, `<prefix>/share/simwatt` beside
//! an installed `<prefix>/bin/simwatt`, and the source tree the binary was built from when it still
//! exists. `SIMWATT_DATA_DIR=none` turns the search off: the run has no data directory and uses the
//! built-in data alone (and the files its config names). A relative path in a config is looked up beside the config file, then in the data
//! directory, then in the current directory; the first that exists is used (one that exists nowhere
//! is kept as written, and the error that follows names it).
//!
//! A shipped file (a power or engine profile, a region, its hourly series, the embodied-carbon table)
//! is read from the data directory when it is there, else from the copy built into the binary
//! ([`super::builtin`]): the data directory's file wins, so an edited or newer profile is used. Its
//! [`Origin`] says which, for provenance.

use super::builtin;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The folder that marks a data directory.
const MARKER: &str = "profiles/power";

/// The environment variable that names a data directory.
pub const ENV: &str = "SIMWATT_DATA_DIR";

/// The value of [`ENV`] that turns the search off (built-in data only).
pub const NONE: &str = "none";

/// A data directory and how it was found (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    pub path: PathBuf,
    pub how: String,
}

impl DataDir {
    /// The directory as a message shows it: `.` for the current directory (an empty relative path,
    /// which a relative config path in the current directory resolves to), else the path.
    pub fn shown(&self) -> String {
        if self.path.as_os_str().is_empty() {
            ".".into()
        } else {
            self.path.display().to_string()
        }
    }

    /// Finds the data directory of the config at `config` (see the module header for the order).
    /// `explicit` is the config's `data_dir`, relative to the config file.
    pub fn find(config: &Path, explicit: Option<&Path>) -> Option<DataDir> {
        let config_dir = config.parent().unwrap_or(Path::new(""));
        if let Some(d) = explicit {
            let p = if d.is_absolute() {
                d.to_path_buf()
            } else {
                config_dir.join(d)
            };
            return Some(DataDir {
                path: p,
                how: "the config's data_dir".into(),
            });
        }
        if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
            if d == NONE {
                return None;
            }
            return Some(DataDir {
                path: PathBuf::from(d),
                how: format!("${ENV}"),
            });
        }
        for a in config_dir.ancestors() {
            if a.join(MARKER).is_dir() {
                return Some(DataDir {
                    path: a.to_path_buf(),
                    how: "the config file's folder or one above it".into(),
                });
            }
        }
        if Path::new(MARKER).is_dir() {
            return Some(DataDir {
                path: PathBuf::new(),
                how: "the current directory".into(),
            });
        }
        if let Some(share) = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("share/simwatt")))
            .filter(|s| s.join(MARKER).is_dir())
        {
            return Some(DataDir {
                path: share,
                how: "the install prefix (share/simwatt beside bin/)".into(),
            });
        }
        let source = Path::new(env!("CARGO_MANIFEST_DIR"));
        if source.join(MARKER).is_dir() {
            return Some(DataDir {
                path: source.to_path_buf(),
                how: "the source tree simwatt was built from".into(),
            });
        }
        None
    }

    /// The data directory of a command that reads no config file (`fit power`'s default manifest):
    /// `$SIMWATT_DATA_DIR`, the current directory or one above it, the install prefix, the source
    /// tree.
    pub fn find_default() -> Option<DataDir> {
        Self::find(Path::new(""), None)
    }

    /// `rel` under the data directory.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

/// Anchors a path a config names: absolute paths as they are; a relative one beside the config file,
/// else in the data directory, else in the current directory, whichever exists first; one that exists
/// nowhere is returned as written.
pub fn anchor(p: &Path, config: &Path, data: Option<&DataDir>) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let config_dir = config.parent().unwrap_or(Path::new(""));
    let mut candidates = vec![config_dir.join(p)];
    if let Some(d) = data {
        candidates.push(d.join(p));
    }
    candidates.push(p.to_path_buf());
    candidates
        .into_iter()
        .find(|c| c.exists())
        .unwrap_or_else(|| p.to_path_buf())
}

/// Anchors a path given on the command line (an input of `fit` or `validate`): as written when it
/// exists (relative to the current directory), else in the data directory found without a config
/// ([`DataDir::find_default`]) when it exists there, else as written (the error that follows names it).
pub fn anchor_arg(p: &Path) -> PathBuf {
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    DataDir::find_default()
        .map(|d| d.join(p))
        .filter(|c| c.exists())
        .unwrap_or_else(|| p.to_path_buf())
}

/// How a path is shown in outputs: relative to the data directory when it lies under it (so that a
/// run gives the same summary wherever it is started), else as it is.
pub fn shown(p: &Path, data: Option<&DataDir>) -> String {
    data.and_then(|d| p.strip_prefix(&d.path).ok())
        .filter(|r| !r.as_os_str().is_empty())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Where a data file a run reads came from: a file on disk, or the copy built into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    BuiltIn(&'static builtin::File),
}

impl Origin {
    /// How the origin is named in messages and provenance: the file's path, or
    /// `built-in:<path in the data directory>`.
    pub fn name(&self) -> PathBuf {
        match self {
            Origin::File(p) => p.clone(),
            Origin::BuiltIn(f) => PathBuf::from(format!("built-in:{}", f.rel)),
        }
    }

    /// The text of the file.
    pub fn text(&self) -> Result<Cow<'static, str>> {
        match self {
            Origin::File(p) => crate::input::read_text(p).map(Cow::Owned),
            Origin::BuiltIn(f) => Ok(Cow::Borrowed(f.text)),
        }
    }

    /// SHA-256 of the file's bytes.
    pub fn sha256(&self) -> Result<String> {
        match self {
            Origin::File(p) => crate::digest::sha256_file_hex(p).map_err(|e| Error::io(p, e)),
            Origin::BuiltIn(f) => Ok(sha256_hex(f.text.as_bytes())),
        }
    }

    /// As [`shown`] for a file; `built-in:<path>` for a built-in copy.
    pub fn shown(&self, data: Option<&DataDir>) -> String {
        match self {
            Origin::File(p) => shown(p, data),
            Origin::BuiltIn(_) => self.name().display().to_string(),
        }
    }
}

/// A shipped file of the data directory's folder `dir` (`profiles/power`): the data directory's
/// `dir/rel` when it exists, else the built-in copy, else `None`. Without a data directory only the
/// built-in copy is looked at.
pub fn locate_shipped(data: Option<&DataDir>, dir: &str, rel: &Path) -> Option<Origin> {
    match data {
        Some(d) => locate(&d.join(dir), rel, dir),
        None => builtin::get(&Path::new(dir).join(rel)).map(Origin::BuiltIn),
    }
}

/// A shipped file: `dir/rel` when it exists, else the built-in copy of `<builtin_dir>/rel`, else
/// `None`. `dir` is the folder a config reads (its data directory's `profiles/power`, its
/// `regions_dir`), `builtin_dir` the same folder in the repository's layout.
pub fn locate(dir: &Path, rel: &Path, builtin_dir: &str) -> Option<Origin> {
    let p = dir.join(rel);
    if p.exists() {
        return Some(Origin::File(p));
    }
    builtin::get(&Path::new(builtin_dir).join(rel)).map(Origin::BuiltIn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_directory_is_shown_as_a_dot_not_as_nothing() {
        let here = DataDir {
            path: PathBuf::new(),
            how: "the current directory".into(),
        };
        assert_eq!(here.shown(), ".");
        let there = DataDir {
            path: PathBuf::from("/opt/simwatt"),
            how: "the config's data_dir".into(),
        };
        assert_eq!(there.shown(), "/opt/simwatt");
    }
}
