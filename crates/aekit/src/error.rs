//! The library's error type: every failure names the file or setting it concerns, so the
//! CLI can print it as one clear line.

use std::path::PathBuf;

/// Any error the aekit library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A data file or folder holds something aekit cannot use.
    #[error("{}: {message}", path.display())]
    Data {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file or `--set` override is invalid.
    #[error("{source_name}: {message}")]
    Config {
        /// The config file (or `--set`) the problem comes from.
        source_name: String,
        /// What is wrong, naming the key (and line where known).
        message: String,
    },
    /// A run directory is missing, incomplete or would be overwritten.
    #[error("{}: {message}", path.display())]
    Run {
        /// The run directory concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Training could not go on (for example the loss became NaN).
    #[error("{0}")]
    Training(String),
    /// A download failed or its checksum did not match.
    #[error("{url}: {message}")]
    Download {
        /// The address that was being fetched.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Values handed to a loaded model (through the API, not from a file) do not fit it.
    #[error("{0}")]
    Input(String),
    /// What was asked cannot be done with this model or these options.
    #[error("{0}")]
    Unsupported(String),
    /// Training was stopped by the user (Ctrl-C) after a checkpoint was saved.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A data error about `path`.
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A config error from `source_name` (a file name or `--set`).
    pub fn config(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            source_name: source_name.into(),
            message: message.into(),
        }
    }

    /// A run-directory error about `path`.
    pub fn run(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Run {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
