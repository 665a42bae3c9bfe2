//! One module per subcommand: its arguments and the call into the library.

pub mod augment_args;
pub mod augment_preview;
pub mod evaluate;
pub mod finetune;
pub mod mnist;
pub mod predict;
pub mod summary;
pub mod train;

/// Parses a library settings enum by its name (its `FromStr`), for clap.
pub fn parse_setting<T>(name: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = convkit::Error>,
{
    name.parse().map_err(|e: convkit::Error| e.to_string())
}

/// A training command stopped by Ctrl-C or SIGTERM, with the command that continues it:
/// `main` prints it and exits with status 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Arguments that set nothing a run keeps (output, verbosity, the run folder itself).
const NOT_SETTINGS: &[&str] = &[
    "resume", "out", "json", "quiet", "device", "threads", "run_dir",
];

/// The settings given on the command line (not left at their defaults), as the keys of the
/// job's JSON that they set: an argument's key is its own name unless `renames` maps it.
pub fn given_settings(matches: &clap::ArgMatches, renames: &[(&str, &'static str)]) -> Vec<String> {
    matches
        .ids()
        .map(|id| id.as_str())
        .filter(|id| {
            !NOT_SETTINGS.contains(id)
                && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| {
            renames
                .iter()
                .find(|(arg, _)| *arg == id)
                .map_or(id.to_owned(), |(_, key)| (*key).to_owned())
        })
        .collect()
}

/// Refuses to resume `run_dir` with settings that differ from the ones it started with.
pub fn refuse_changed_settings(
    run_dir: &std::path::Path,
    changed: &[String],
) -> anyhow::Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{}: a run resumes with the settings it started with, and the command line changes \
         them:\n  {}\nDrop these options (--resume reads the settings from run.json), or start \
         a new run with --out",
        run_dir.display(),
        changed.join("\n  ")
    )
}

/// What a training command's library call ended with, as the CLI tells it: an
/// interruption becomes [`Interrupted`] with the command that resumes it; a finished run is
/// said to be finished (`Ok(None)`).
pub fn training_result<T>(
    result: convkit::Result<T>,
    command: &str,
    run_dir: &std::path::Path,
    context: &str,
) -> anyhow::Result<Option<T>> {
    match result {
        Ok(report) => Ok(Some(report)),
        Err(convkit::Error::RunFinished { run_dir, epochs }) => {
            println!(
                "{} is finished ({epochs} epochs): nothing to resume. Its results are in \
                 metrics.json; evaluate it with `convkit evaluate {}`.",
                run_dir.display(),
                run_dir.display()
            );
            Ok(None)
        }
        Err(err @ convkit::Error::Interrupted { .. }) => Err(Interrupted(format!(
            "{err}.\nContinue the run with:\n  convkit {command} --resume {}",
            run_dir.display()
        ))
        .into()),
        Err(err) => Err(anyhow::Error::new(err).context(context.to_owned())),
    }
}
