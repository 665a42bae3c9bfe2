//! The one error type of the library.

use std::path::PathBuf;

/// Everything that can go wrong in convkit, with the context a user needs to act on it:
/// the file, the key, the expected and the actual value.
///
/// Each message is whole: it includes the reason that the operating system, the JSON
/// parser or libtorch gave, so `source()` is `None` and a chain of causes (anyhow's
/// `{:#}`) names each reason once. The reason itself stays in the variant's fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("{path}: {reason}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's reason.
        reason: std::io::Error,
    },

    /// A data file exists but its content is not what its format requires.
    #[error("{path}: {message}")]
    InvalidData {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, in words.
        message: String,
    },

    /// A dataset could not be found in any of the places searched.
    #[error("{what} not found; looked in:\n{}", .searched.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    DataNotFound {
        /// What was looked for, for example "MNIST".
        what: String,
        /// Every folder that was searched, in order.
        searched: Vec<PathBuf>,
    },

    /// Like [`Error::DataNotFound`], with what to do about it: what is missing, every
    /// folder searched, then `how` (why it could not be fetched, how to supply it).
    #[error("{what} not found.\nLooked in:\n{}\n{how}", .searched.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    DataMissing {
        /// What was looked for, for example "MNIST".
        what: String,
        /// Every folder that was searched, in order.
        searched: Vec<PathBuf>,
        /// Whole sentences: why it could not be fetched, if that was tried, and how to
        /// supply it by hand.
        how: String,
    },

    /// A download failed or delivered a file other than the expected one.
    #[error("download of {url} failed: {message}")]
    Download {
        /// The address fetched.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// A checkpoint or weights file does not match the model it is loaded into.
    #[error("{path}: weights do not match the model:\n{}", .problems.join("\n"))]
    WeightsMismatch {
        /// The weights file.
        path: PathBuf,
        /// One line per missing, unexpected or mis-shaped tensor.
        problems: Vec<String>,
    },

    /// A model description, option or argument is not valid.
    #[error("{0}")]
    InvalidConfig(String),

    /// Another process of a distributed run failed, hung or could not be reached, or the
    /// processes disagree; the message names the rank concerned.
    #[error("distributed training: {0}")]
    Distributed(String),

    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(tch::TchError),

    /// A JSON file could not be parsed or written.
    #[error("{path}: {reason}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The parser's reason.
        reason: serde_json::Error,
    },

    /// Training was stopped by Ctrl-C or SIGTERM (see `train::interrupt`); the state
    /// written after the last complete epoch is kept, so the run can be resumed.
    #[error("{}", interrupted(*.epoch))]
    Interrupted {
        /// The epoch that was under way (1-based).
        epoch: usize,
    },

    /// A run asked to resume has already finished.
    #[error("{}: the run is finished ({epochs} epochs); its results are in metrics.json", .run_dir.display())]
    RunFinished {
        /// The run folder.
        run_dir: PathBuf,
        /// Epochs it ran.
        epochs: usize,
    },

    /// A plot could not be drawn.
    #[error("plot {path}: {message}")]
    Plot {
        /// The image being written.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn interrupted(epoch: usize) -> String {
    match epoch {
        0 | 1 => "interrupted in epoch 1, before any epoch was complete".to_string(),
        _ => format!(
            "interrupted in epoch {epoch}; the state after epoch {} is kept",
            epoch - 1
        ),
    }
}

impl From<tch::TchError> for Error {
    fn from(err: tch::TchError) -> Self {
        Error::Torch(err)
    }
}

/// `Result` with convkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, reason: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            reason,
        }
    }

    /// An [`Error::Plot`] for the image at `path`.
    pub fn plot(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Plot {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// An [`Error::InvalidData`] for `path`.
    pub fn invalid_data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::InvalidData {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// Each reason appears once: in the message, not again as a cause below it.
    #[test]
    fn a_message_names_its_reason_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let errors = [
            Error::io("/runs/a/run.json", missing),
            Error::Json {
                path: "/runs/a/metrics.json".into(),
                reason: json,
            },
            Error::from(tch::TchError::Torch("bad shape".into())),
        ];
        for (err, reason) in errors
            .into_iter()
            .zip(["No such file", "expected value", "bad shape"])
        {
            assert!(err.source().is_none(), "{err}");
            assert_eq!(err.to_string().matches(reason).count(), 1, "{err}");
        }
        let text = Error::io("/x", std::io::Error::other("disk full")).to_string();
        assert_eq!(text, "/x: disk full");
    }
}
