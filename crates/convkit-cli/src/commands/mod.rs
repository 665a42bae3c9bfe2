//! One module per subcommand: its arguments and the call into the library.

pub mod augment_args;
pub mod augment_preview;
pub mod chapter8;
pub mod data_parallel;
pub mod evaluate;
pub mod export;
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
    "resume",
    "out",
    "json",
    "quiet",
    "device",
    "threads",
    "run_dir",
    "dist_timeout",
];

/// The settings given on the command line (not left at their defaults), as the keys of the
/// job's JSON that they set: an argument's key is its own name unless `renames` maps it, and
/// every augmentation flag ([`augment_args::AugmentArgs`]) sets `augmentation`.
fn given_settings(matches: &clap::ArgMatches, renames: &[(&str, &'static str)]) -> Vec<String> {
    use clap::Args as _;
    let augmentation = augment_args::AugmentArgs::augment_args(clap::Command::new("augment"));
    let is_augmentation = |id: &str| augmentation.get_arguments().any(|a| a.get_id() == id);
    matches
        .ids()
        .map(|id| id.as_str())
        .filter(|id| {
            !NOT_SETTINGS.contains(id)
                && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| match renames.iter().find(|(arg, _)| *arg == id) {
            Some((_, key)) => (*key).to_owned(),
            None if is_augmentation(id) => "augmentation".to_owned(),
            None => id.to_owned(),
        })
        .collect()
}

/// Before `run_dir` is resumed: refuses the settings given on the command line (`given`,
/// named as [`given_settings`] says) that differ from the ones the run started with.
/// `saved_and_given` turns the run's `run.json` into the job it started with and the job
/// the command line describes. A run of another kind than `job`, or no run, is left to the
/// library, which says which it is and how to resume it.
pub fn refuse_changed_settings<C, J>(
    run_dir: &std::path::Path,
    job: &str,
    given: &clap::ArgMatches,
    renames: &[(&str, &'static str)],
    saved_and_given: impl FnOnce(C) -> anyhow::Result<(J, J)>,
) -> anyhow::Result<()>
where
    C: serde::de::DeserializeOwned,
    J: serde::Serialize,
{
    use anyhow::Context as _;
    let run = convkit::workflows::RunDir::at(run_dir);
    if !run.config().is_file() || !run.recorded_job().is_ok_and(|recorded| recorded == job) {
        return Ok(());
    }
    let config: C =
        convkit::json_file::read_json(&run.config()).context("cannot read the run's settings")?;
    let (saved, given_job) = saved_and_given(config)?;
    let keys = given_settings(given, renames);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let changed = convkit::workflows::changed_settings(&saved, &given_job, &keys);
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
        // Rank 0 of a data-parallel run reports it; the other ranks computed the same.
        Ok(_) if !convkit::distributed::is_main_process() => Ok(None),
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
