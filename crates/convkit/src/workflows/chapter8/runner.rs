//! Runs the chapter's workflows in order in one folder, keeps finished runs, continues
//! interrupted ones, and writes the page after each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use tch::Device;

use super::quick_subset::{cats_source, make_quick_subset, quick_cats_dir};
use super::recipes::{chapter_workflows, notes, ChapterOptions, Workflow, WorkflowRun};
use crate::atomic_file::write_atomic;
use crate::data::image_folder::{load_image, ImageFolder, ImageOptions};
use crate::error::{Error, Result};
use crate::json_file::{read_json, write_json};
use crate::models::pretrained::locate_weights;
use crate::models::BackboneArch;
use crate::report::augmentation_grid;
use crate::report::chapter8_page::{
    render_chapter8_page, Chapter8Summary, Figure, FlipTtaScore, WorkflowResult, WorkflowStatus,
};
use crate::report::Machine;
use crate::runtime::Precision;
use crate::train::Tta;
use crate::workflows::evaluate::evaluate_run;
use crate::workflows::pipeline::{self, RunOptions, RunReport};
use crate::workflows::run_dir::RunDir;
use crate::workflows::run_spec::{differences, Checkpoint, Compared, Recipe, RunKind, RunSpec};

/// The file names written into the output folder.
const PAGE: &str = "chapter8.html";
const JSON: &str = "chapter8.json";
const GRID: &str = "augmentation-grid.png";

/// What to run; [`Chapter8Job::new`] gives the chapter's full settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Chapter8Job {
    /// The folder holding the six run folders, the page and its JSON.
    pub out_dir: PathBuf,
    /// A smoke test: small subsets, small images, 1-2 epochs per workflow.
    pub quick: bool,
    /// A folder holding `mnist/` and `cats_vs_dogs/`; `None`: MNIST is found as
    /// `convkit mnist` finds it, cats vs dogs at `$CONVKIT_DATA/cats_vs_dogs`, else
    /// `./data/cats_vs_dogs`.
    pub data_dir: Option<PathBuf>,
    /// The precision to train in; `None`: `auto` for new runs (bf16 where the hardware has
    /// bf16 units), the source run's own for fine-tuning (as the commands do).
    pub precision: Option<Precision>,
    /// Progress bars and per-epoch lines of each workflow on stderr.
    pub progress: bool,
    /// How the workflows are fitted: the book's settings (the default) or convkit's fast
    /// ones.
    pub recipe: Recipe,
    /// Also measure each cats-vs-dogs workflow's kept model with test-time augmentation by
    /// horizontal flip ([`WorkflowResult::flip_tta`]); a kept workflow's earlier
    /// measurement is reused.
    pub flip_tta: bool,
}

impl Chapter8Job {
    /// The chapter (or, with `quick`, its smoke test), written to
    /// [`Chapter8Job::default_out_dir`].
    pub fn new(quick: bool) -> Self {
        Chapter8Job {
            out_dir: Self::default_out_dir(quick),
            quick,
            data_dir: None,
            precision: None,
            progress: false,
            recipe: Recipe::Book,
            flip_tta: false,
        }
    }

    /// `runs/chapter8`, or `runs/chapter8-quick` for the smoke test.
    pub fn default_out_dir(quick: bool) -> PathBuf {
        PathBuf::from(if quick {
            "runs/chapter8-quick"
        } else {
            "runs/chapter8"
        })
    }
}

/// What happens to a workflow's run folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It trains from its first epoch.
    Train,
    /// It continues an interrupted run.
    Resume,
    /// It is finished: its results are read, nothing trains.
    Keep,
}

/// Progress of [`run_chapter8`], for the caller to show.
#[derive(Debug)]
pub enum Chapter8Event<'a> {
    /// A workflow begins.
    Start {
        /// Its position, from 1.
        index: usize,
        /// How many workflows there are.
        total: usize,
        /// Its name (and run folder's name).
        name: &'a str,
        /// Its title.
        title: &'a str,
        /// What happens to it.
        action: Action,
        /// Its run folder.
        run_dir: &'a Path,
    },
    /// A workflow is done.
    Done {
        /// Its position, from 1.
        index: usize,
        /// How many workflows there are.
        total: usize,
        /// Its numbers.
        result: &'a WorkflowResult,
    },
}

/// What [`run_chapter8`] wrote.
#[derive(Clone, Debug)]
pub struct Chapter8Report {
    /// Every workflow's numbers (also in `chapter8.json`).
    pub summary: Chapter8Summary,
    /// `OUT/chapter8.html`.
    pub page: PathBuf,
    /// `OUT/chapter8.json`.
    pub json: PathBuf,
}

/// Where a run folder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Finished,
    InProgress,
    Fresh,
}

fn state_of(run: &RunDir) -> State {
    if run.metrics().is_file() {
        State::Finished
    } else if run.config().is_file() {
        State::InProgress
    } else {
        State::Fresh
    }
}

/// Refuses a run folder that holds another run than `workflow` would make: a kept run must
/// be the chapter's, or the page would set the wrong numbers beside the book's. Where the
/// data and weights are, and the precision (a run keeps the one it started in), may
/// differ.
fn check_recorded(run: &RunDir, workflow: &Workflow, quick: bool) -> Result<()> {
    let config = run.config();
    if !config.is_file() {
        return Err(Error::invalid_data(
            run.root(),
            "holds metrics.json but no run.json: not a run of `convkit chapter8`; remove the \
             folder to train it again, or use another --out",
        ));
    }
    let recorded = run.spec()?;
    if let WorkflowRun::Finetune { source, .. } = &workflow.run {
        // The source run defines most of the settings; without it, nothing to compare.
        if RunDir::at(source).checkpoint().is_none() {
            return Ok(());
        }
    }
    let expected = workflow.run.spec()?;
    if recorded.kind != expected.kind {
        return Err(Error::invalid_data(
            &config,
            format!(
                "this is a `{}` run, not the chapter's `{}` workflow: use another --out",
                recorded.kind, workflow.name
            ),
        ));
    }
    let changed = differences(&recorded, &expected, Compared::AllBut(&["fit.precision"]));
    if changed.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = changed
        .iter()
        .map(|d| d.describe("chapter8 uses"))
        .collect();
    Err(Error::invalid_data(
        &config,
        format!(
            "the run in this folder was made with other settings than `convkit chapter8{}` \
             uses:\n  {}\nWas it made {} --quick? Use another --out, or remove the folder to \
             train it again.",
            if quick { " --quick" } else { "" },
            lines.join("\n  "),
            if quick { "without" } else { "with" }
        ),
    ))
}

/// Trains, continues or reads the workflow's run, as its folder's state says.
fn run_workflow(
    workflow: &Workflow,
    state: State,
    out: &Path,
    options: &RunOptions,
) -> Result<(RunReport, Action)> {
    let dir = workflow.run_dir(out);
    let read = || RunReport::read(&RunDir::at(&dir).metrics());
    match state {
        State::Finished => Ok((read()?, Action::Keep)),
        State::InProgress => match pipeline::resume(&dir, options) {
            Err(Error::RunFinished { .. }) => Ok((read()?, Action::Resume)),
            other => Ok((other?, Action::Resume)),
        },
        State::Fresh => Ok((
            pipeline::run(&workflow.run.spec()?, options)?,
            Action::Train,
        )),
    }
}

/// The workflow as the page shows it before it has run.
fn pending(workflow: &Workflow, out: &Path) -> WorkflowResult {
    let run_dir = workflow.run_dir(out);
    WorkflowResult {
        name: workflow.name.into(),
        title: workflow.title.into(),
        description: workflow.description.clone(),
        status: WorkflowStatus::Pending,
        split: if workflow.is_mnist() {
            "test".into()
        } else {
            "validation".into()
        },
        accuracy: None,
        loss: None,
        count: None,
        epochs: None,
        epochs_planned: workflow.epochs,
        flip_tta: None,
        kept_epoch: None,
        checkpoint: kept_model(workflow.is_mnist(), workflow.checkpoint == Checkpoint::Last),
        wall_seconds: None,
        train_images_per_second: None,
        book: workflow.book.clone(),
        settings: Value::Null,
        figures: vec![curves_figure(&run_dir)],
        run_dir,
    }
}

fn curves_figure(run_dir: &Path) -> Figure {
    let path = RunDir::at(run_dir).curves();
    Figure {
        caption: "Training and validation loss and accuracy per epoch".into(),
        png: std::fs::read(&path).ok(),
        path,
    }
}

/// The run's description from its `run.json`, without where it was written and what it
/// found.
fn recorded_settings(spec: Option<&RunSpec>) -> Value {
    let Some(mut spec) = spec.cloned() else {
        return Value::Null;
    };
    spec.recorded = None;
    let mut settings = serde_json::to_value(&spec).unwrap_or(Value::Null);
    if let Some(map) = settings.as_object_mut() {
        map.remove("output");
        map.remove("format");
        map.remove("version");
    }
    settings
}

/// Which model of a run the page reports, in words.
fn kept_model(mnist: bool, keeps_last: bool) -> String {
    match (mnist, keeps_last) {
        (true, true) => "the last epoch: the chapter evaluates the model as training left it",
        (false, true) => "the last epoch: the fast recipe's schedule ends at a rate near 0",
        (_, false) => "lowest validation loss",
    }
    .into()
}

/// Fills `result` with a finished run's numbers.
fn fill(result: &mut WorkflowResult, report: &RunReport) {
    let spec = RunDir::at(&result.run_dir).spec().ok();
    if let Some((split, eval)) = report.headline() {
        result.split = split.into();
        result.accuracy = Some(eval.accuracy);
        result.loss = Some(eval.loss);
        result.count = Some(eval.count);
    }
    result.epochs = Some(report.epochs);
    result.kept_epoch = Some(report.best_epoch);
    let keeps_last = spec
        .as_ref()
        .is_some_and(|s| s.output.checkpoint == Checkpoint::Last);
    result.checkpoint = kept_model(
        spec.as_ref().is_some_and(|s| s.kind == RunKind::Mnist),
        keeps_last,
    );
    result.train_images_per_second = Some(report.images_per_second);
    result.settings = recorded_settings(spec.as_ref());
    result.figures[0] = curves_figure(&result.run_dir);
}

/// Draws the chapter's figure 8.10 for the augmentation run, from its first training image
/// and with its own augmentation layers, image size and seed.
fn draw_augmentation_grid(run: &RunDir, path: &Path) -> Result<()> {
    let spec = run.spec()?;
    let train_dir = spec
        .recorded
        .as_ref()
        .map(|r| r.train_dir.clone())
        .ok_or_else(|| Error::invalid_data(run.config(), "the run records no training folder"))?;
    let folder = ImageFolder::scan(&train_dir)?;
    let (image, _) = folder
        .files
        .first()
        .ok_or_else(|| Error::invalid_data(&train_dir, "holds no image"))?;
    let size = spec.data.decoding().image_size;
    let options = ImageOptions {
        size: (size, size),
        ..ImageOptions::default()
    };
    let pixels = load_image(image, &options)?;
    augmentation_grid(
        &pixels,
        size,
        size,
        &spec.model.augmentation,
        spec.fit.seed,
        path,
    )
}

fn grid_figure(run: &RunDir, out: &Path) -> Figure {
    let path = out.join(GRID);
    let caption = "Figure 8.10: the first training image augmented nine times by the run's \
                   augmentation layers (in training mode, the run's seed)";
    let drawn = if path.is_file() {
        Ok(())
    } else {
        draw_augmentation_grid(run, &path)
    };
    Figure {
        caption: match &drawn {
            Ok(()) => caption.into(),
            Err(err) => format!("{caption}; it could not be drawn: {err}"),
        },
        png: drawn.ok().and_then(|()| std::fs::read(&path).ok()),
        path,
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn now_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Per workflow, what an earlier invocation recorded in `chapter8.json`.
fn previous_results(path: &Path) -> HashMap<String, WorkflowResult> {
    read_json::<Chapter8Summary>(path)
        .map(|s| {
            s.workflows
                .into_iter()
                .map(|w| (w.name.clone(), w))
                .collect()
        })
        .unwrap_or_default()
}

/// The kept model of the finished run in `run_dir` measured with flip TTA on the split its
/// figure comes from (the run's test split, else its validation split).
fn measure_flip_tta(run_dir: &Path, device: Device) -> Result<FlipTtaScore> {
    let start = Instant::now();
    let evaluation = evaluate_run(run_dir, None, device, None, Tta::HorizontalFlip)?;
    Ok(FlipTtaScore {
        accuracy: evaluation.accuracy,
        loss: evaluation.loss,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Runs the chapter's six workflows in order in `job.out_dir` (keeping finished runs,
/// continuing interrupted ones), and writes `chapter8.html` and `chapter8.json` there
/// after each. `on_event` hears when each workflow starts and ends.
///
/// # Errors
/// The first workflow's error, after the page shows what was done; an interruption
/// (Ctrl-C) is [`Error::Interrupted`], and calling this again continues. A run folder
/// holding a run with other settings than the recipe's is refused, naming them.
pub fn run_chapter8(
    job: &Chapter8Job,
    device: Device,
    on_event: &mut dyn FnMut(Chapter8Event<'_>),
) -> Result<Chapter8Report> {
    let out = &job.out_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let page = out.join(PAGE);
    let json = out.join(JSON);
    let cats = if job.quick {
        quick_cats_dir(out)
    } else {
        cats_source(job.data_dir.as_deref()).unwrap_or_else(|_| PathBuf::from("data/cats_vs_dogs"))
    };
    let workflows = chapter_workflows(&ChapterOptions {
        out_dir: out,
        quick: job.quick,
        mnist_dir: job.data_dir.clone(),
        cats: &cats,
        precision: job.precision,
        recipe: job.recipe,
    });
    let states: Vec<State> = workflows
        .iter()
        .map(|w| state_of(&RunDir::at(&w.run_dir(out))))
        .collect();
    // Fail before hours of training, not in the middle: every input the remaining
    // workflows need must be there.
    let to_run = |(w, state): &(&Workflow, &State)| **state != State::Finished && !w.is_mnist();
    if workflows.iter().zip(&states).any(|s| to_run(&s)) {
        let source = cats_source(job.data_dir.as_deref())?;
        if job.quick {
            make_quick_subset(&source, &cats)?;
        }
    }
    if workflows
        .iter()
        .zip(&states)
        .any(|(w, state)| *state != State::Finished && w.uses_vgg16())
    {
        locate_weights(BackboneArch::Vgg16, None)?;
    }
    let previous = previous_results(&json);
    let mut summary = Chapter8Summary {
        quick: job.quick,
        date: now_utc(),
        convkit_version: env!("CARGO_PKG_VERSION").into(),
        machine: Machine::this(device),
        notes: notes(job.quick, &quick_cats_dir(out), job.recipe, job.flip_tta),
        workflows: workflows.iter().map(|w| pending(w, out)).collect(),
    };
    let write = |summary: &mut Chapter8Summary| -> Result<()> {
        summary.date = now_utc();
        write_json(&json, summary)?;
        write_atomic(&page, render_chapter8_page(summary).as_bytes())
    };
    let options = RunOptions {
        device,
        progress: job.progress,
    };
    let total = workflows.len();
    for (i, (workflow, &state)) in workflows.iter().zip(&states).enumerate() {
        let run_dir = workflow.run_dir(out);
        let run = RunDir::at(&run_dir);
        if state != State::Fresh {
            check_recorded(&run, workflow, job.quick)?;
        }
        let action = match state {
            State::Finished => Action::Keep,
            State::InProgress => Action::Resume,
            State::Fresh => Action::Train,
        };
        on_event(Chapter8Event::Start {
            index: i + 1,
            total,
            name: workflow.name,
            title: workflow.title,
            action,
            run_dir: &run_dir,
        });
        let earlier = previous
            .get(workflow.name)
            .map(|w| (w.status, w.wall_seconds));
        let partial = match earlier {
            Some((WorkflowStatus::Interrupted, wall)) => wall.unwrap_or(0.0),
            _ => 0.0,
        };
        let start = Instant::now();
        let outcome = run_workflow(workflow, state, out, &options);
        let elapsed = start.elapsed().as_secs_f64();
        let result = &mut summary.workflows[i];
        match outcome {
            Ok((report, action)) => {
                fill(result, &report);
                (result.status, result.wall_seconds) = match action {
                    Action::Keep => (
                        WorkflowStatus::Kept,
                        match earlier {
                            Some((status, wall)) if status.is_finished() => wall,
                            _ if report.wall_seconds > 0.0 => Some(report.wall_seconds),
                            _ => None,
                        },
                    ),
                    Action::Resume => (WorkflowStatus::Resumed, Some(partial + elapsed)),
                    Action::Train => (WorkflowStatus::Trained, Some(partial + elapsed)),
                };
                if workflow.name == "augmentation" {
                    let figure = grid_figure(&run, out);
                    result.figures.push(figure);
                }
            }
            Err(err @ Error::Interrupted { .. }) => {
                result.status = WorkflowStatus::Interrupted;
                result.wall_seconds = Some(partial + elapsed);
                write(&mut summary)?;
                return Err(err);
            }
            Err(err) => return Err(err),
        }
        if job.flip_tta && !workflow.is_mnist() {
            let kept = summary.workflows[i].status == WorkflowStatus::Kept;
            let measured_before = previous
                .get(workflow.name)
                .filter(|_| kept)
                .and_then(|w| w.flip_tta);
            let score = match measured_before {
                Some(score) => score,
                None => {
                    // The plain figure is on the page during the second measurement.
                    write(&mut summary)?;
                    measure_flip_tta(&run_dir, device)?
                }
            };
            summary.workflows[i].flip_tta = Some(score);
        }
        write(&mut summary)?;
        on_event(Chapter8Event::Done {
            index: i + 1,
            total,
            result: &summary.workflows[i],
        });
    }
    Ok(Chapter8Report {
        summary,
        page,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::run_spec::legacy_v1;

    /// A run folder made before run descriptions were versioned is recognised as the
    /// chapter's workflow when its settings are the recipe's.
    #[test]
    fn kept_runs_of_earlier_versions_match_their_recipes() {
        let out = Path::new("runs/chapter8");
        let workflows = chapter_workflows(&ChapterOptions {
            out_dir: out,
            quick: false,
            mnist_dir: None,
            cats: Path::new("/data/cats_vs_dogs"),
            precision: Some(Precision::Bf16),
            recipe: Recipe::Book,
        });
        let old = serde_json::json!({
            "job": "mnist", "data_dir": "/data/mnist", "device": "cpu", "precision": "bf16",
            "threads": 1, "world_size": 1,
            "settings": {"data_dir": null, "out_dir": "runs/chapter8/mnist", "epochs": 5,
                "batch_size": 64, "validation_split": 0.1, "seed": 42, "train_limit": null,
                "optimizer": {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9,
                "epsilon": 1e-7}, "progress": true, "precision": "bf16"}
        });
        let recorded = legacy_v1::convert(old, Path::new("run.json")).unwrap();
        let WorkflowRun::Run(expected) = &workflows[0].run else {
            panic!("MNIST runs")
        };
        assert!(differences(&recorded, expected, Compared::AllBut(&[])).is_empty());
    }
}
