//! One module per subcommand: its arguments and the call into the library.

pub mod augment_args;
pub mod augment_preview;
pub mod chapter8;
pub mod data_parallel;
pub mod evaluate;
pub mod export;
pub mod finetune;
pub mod fit_args;
pub mod lr_find;
pub mod mnist;
pub mod predict;
pub mod summary;
pub mod train;

use std::path::Path;

use convkit::workflows::pipeline::{self, RunOptions, RunReport};
use convkit::workflows::run_spec::{differences, Compared, RunKind, RunSpec};
use convkit::workflows::RunDir;

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

/// The ids of the arguments given on the command line (not left at their defaults) that
/// set settings of a run.
fn given_settings(matches: &clap::ArgMatches) -> Vec<&str> {
    matches
        .ids()
        .map(|id| id.as_str())
        .filter(|id| {
            !NOT_SETTINGS.contains(id)
                && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .collect()
}

/// The setting paths of a run description (`fit.epochs`) that the arguments in `ids` set:
/// `paths` maps an argument's id to its path; every augmentation flag
/// ([`augment_args::AugmentArgs`]) sets `model.augmentation`.
/// An argument missing from `paths` names itself, which compares nothing: the tests check
/// that every command's table is complete.
fn setting_paths(ids: &[&str], paths: &[(&str, &str)]) -> Vec<String> {
    use clap::Args as _;
    let augmentation = augment_args::AugmentArgs::augment_args(clap::Command::new("augment"));
    let is_augmentation = |id: &str| augmentation.get_arguments().any(|a| a.get_id() == id);
    ids.iter()
        .map(|&id| {
            match paths
                .iter()
                .chain(fit_args::FIT_SETTING_PATHS)
                .find(|(arg, _)| *arg == id)
            {
                Some((_, path)) => (*path).to_owned(),
                None if is_augmentation(id) => "model.augmentation".to_owned(),
                None => id.to_owned(),
            }
        })
        .collect()
}

/// A training command: its kind of run, how its arguments name the settings, and how it
/// describes the run the arguments ask for (given the run being resumed, if any).
pub struct TrainingCommand<'a> {
    /// The kind of run the command makes.
    pub kind: RunKind,
    /// Argument id -> setting path, for every argument that sets something.
    pub paths: &'a [(&'a str, &'a str)],
    /// What failed, in an error: `training failed`.
    pub context: &'a str,
}

impl TrainingCommand<'_> {
    /// Runs what the command line asks: the run `describe(None)` gives, or, with `resume`,
    /// the run in that folder, once the settings given beside `--resume` are checked
    /// against its own (`describe(Some(saved))` applies them to the saved run). Returns the
    /// report to print (`None` when there is nothing to print).
    pub fn run(
        &self,
        resume: Option<&Path>,
        given: &clap::ArgMatches,
        describe: impl FnOnce(Option<&RunSpec>) -> anyhow::Result<RunSpec>,
        options: &RunOptions,
    ) -> anyhow::Result<Option<RunReport>> {
        match resume {
            Some(run_dir) => {
                self.refuse_changed_settings(run_dir, given, describe)?;
                self.result(pipeline::resume(run_dir, options), run_dir)
            }
            None => {
                let spec = describe(None)?;
                let out = spec.output.dir.clone();
                self.result(pipeline::run(&spec, options), &out)
            }
        }
    }

    /// Before `run_dir` is resumed: refuses a run of another kind, and the settings given
    /// on the command line that differ from the ones the run started with. No run, or an
    /// unreadable one, is left to the library, which says which it is.
    fn refuse_changed_settings(
        &self,
        run_dir: &Path,
        given: &clap::ArgMatches,
        describe: impl FnOnce(Option<&RunSpec>) -> anyhow::Result<RunSpec>,
    ) -> anyhow::Result<()> {
        let run = RunDir::at(run_dir);
        let Ok(saved) = run.spec() else {
            return Ok(());
        };
        if saved.kind != self.kind {
            anyhow::bail!(
                "{} holds a `{}` run: resume it with `convkit {} --resume {}`",
                run_dir.display(),
                saved.kind,
                saved.kind.command(),
                run_dir.display()
            );
        }
        let paths = setting_paths(&given_settings(given), self.paths);
        if paths.is_empty() {
            return Ok(());
        }
        let asked = describe(Some(&saved))?;
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let changed = differences(&saved, &asked, Compared::Only(&paths));
        if changed.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = changed
            .iter()
            .map(|d| d.describe("the command line"))
            .collect();
        anyhow::bail!(
            "{}: a run resumes with the settings it started with, and the command line changes \
             them:\n  {}\nDrop these options (--resume reads the settings from run.json), or \
             start a new run with --out",
            run_dir.display(),
            lines.join("\n  ")
        )
    }

    /// What the library call ended with, as the CLI tells it: an interruption becomes
    /// [`Interrupted`] with the command that resumes it; a finished run is said to be
    /// finished (`Ok(None)`).
    fn result(
        &self,
        result: convkit::Result<RunReport>,
        run_dir: &Path,
    ) -> anyhow::Result<Option<RunReport>> {
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
                "{err}.\nContinue the run with:\n  convkit {} --resume {}{}",
                self.kind.command(),
                run_dir.display(),
                same_threads()
            ))
            .into()),
            // Invalid settings say what is wrong in their own words, whether refused before
            // the run starts or met during it (a diverged loss).
            Err(err @ convkit::Error::InvalidConfig(_)) => Err(err.into()),
            Err(err) => Err(anyhow::Error::new(err).context(self.context.to_owned())),
        }
    }
}

/// ` --threads N`: a resumed run is bit-identical to one left alone only with the same
/// thread count.
pub fn same_threads() -> String {
    format!(" --threads {}", convkit::tch::get_num_threads().max(1))
}

/// Prints a run's results: as one JSON object with `json`, else as a few lines.
pub fn print_report(report: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let threads = if report.threads == 1 {
        "1 thread".to_owned()
    } else {
        format!("{} threads", report.threads)
    };
    let peak = report
        .peak_memory_mib
        .map(|m| format!(", peak memory {m:.0} MiB"))
        .unwrap_or_default();
    let run = RunDir::at(&report.out_dir);
    if report.kind != RunKind::Mnist {
        if let Some(v) = &report.best_validation {
            let kept = if run.checkpoint() == Some(run.model()) {
                "Kept epoch (the last)"
            } else {
                "Best epoch (lowest validation loss)"
            };
            println!(
                "{kept}: {} of {} - validation accuracy {:.4} (loss {:.4}, {} images{})",
                report.best_epoch,
                report.epochs,
                v.accuracy,
                v.loss,
                v.count,
                evaluate::tta_suffix(v.tta)
            );
        }
    }
    if let Some(t) = &report.test {
        println!(
            "Test accuracy: {:.4} (loss {:.4}, {} images{})",
            t.accuracy,
            t.loss,
            t.count,
            evaluate::tta_suffix(t.tta)
        );
    }
    if report.kind == RunKind::Mnist {
        println!(
            "Trained {} epoch{} on {} images in {:.1} s ({:.0} images/s) on {} in {} with {threads}{peak}",
            report.epochs,
            if report.epochs == 1 { "" } else { "s" },
            report.train_count,
            report.train_seconds,
            report.images_per_second,
            report.device,
            report.precision,
        );
        print_run_folder(&run);
        return Ok(());
    }
    println!(
        "Loaded {} images in {:.1} s ({:.0} images/s); trained {:.1} s per epoch ({:.0} images/s) on {} in {} with {threads}{peak}",
        report.train_count + report.validation_count,
        report.load_seconds,
        report.load_images_per_second,
        report.seconds_per_epoch,
        report.images_per_second,
        report.device,
        report.precision,
    );
    if let Some(f) = &report.features {
        println!(
            "Features {} in {:.1} s (cache: {})",
            if f.cache_hit {
                "read from the cache"
            } else {
                "computed"
            },
            f.seconds,
            f.cache_dir
                .as_ref()
                .map_or("none".into(), |d| d.display().to_string())
        );
    }
    print_run_folder(&run);
    Ok(())
}

/// `Run folder: DIR (model.safetensors, history.csv, ...)`: the files the run wrote there.
fn print_run_folder(run: &RunDir) {
    let files: Vec<String> = [
        run.model(),
        run.best(),
        run.last(),
        run.history(),
        run.curves(),
        run.metrics(),
    ]
    .iter()
    .filter(|path| path.is_file())
    .filter_map(|path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    })
    .collect();
    println!(
        "Run folder: {} ({})",
        run.root().display(),
        files.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of a training command is either no setting or names the settings it
    /// sets, so that `--resume` never lets a changed setting pass unseen.
    #[test]
    fn every_training_argument_names_its_setting() {
        use clap::{Args as _, Command};
        for (name, command, paths) in [
            (
                "mnist",
                mnist::MnistArgs::augment_args(Command::new("mnist")),
                mnist::SETTING_PATHS,
            ),
            (
                "train",
                train::TrainArgs::augment_args(Command::new("train")),
                train::SETTING_PATHS,
            ),
            (
                "finetune",
                finetune::FinetuneArgs::augment_args(Command::new("finetune")),
                finetune::SETTING_PATHS,
            ),
        ] {
            let ids: Vec<&str> = command
                .get_arguments()
                .map(|a| a.get_id().as_str())
                .filter(|id| !NOT_SETTINGS.contains(id))
                .collect();
            for (id, path) in ids.iter().zip(setting_paths(&ids, paths)) {
                let in_a_table = paths
                    .iter()
                    .chain(fit_args::FIT_SETTING_PATHS)
                    .any(|(arg, _)| arg == id);
                assert!(
                    in_a_table || *id != path,
                    "{name}: the argument `{id}` names no setting of a run description"
                );
            }
        }
        let paths = setting_paths(&["precision"], train::SETTING_PATHS);
        assert_eq!(paths, ["fit.precision"]);
    }
}
