//! `convkit evaluate RUN_DIR`: reloads a saved run and measures it on its test data.

use std::path::Path;

use serde::Deserialize;
use tch::Device;

use super::run_dir::{read_json, RunDir};
use crate::data::mnist::{load_mnist_datasets, locate_mnist};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::Evaluation;

#[derive(Deserialize)]
struct JobOnly {
    job: String,
    data_dir: Option<std::path::PathBuf>,
}

/// Loads the model of the run in `run_dir` and evaluates it on the test split of the data it
/// was trained on: `data` when given, else the folder recorded in `run.json`, else the
/// usual search.
pub fn evaluate_run(run_dir: &Path, data: Option<&Path>, device: Device) -> Result<Evaluation> {
    let run = RunDir::open(run_dir)?;
    let config: JobOnly = read_json(&run.config())?;
    let model = Model::load(&run.model(), device)?;
    match config.job.as_str() {
        "mnist" => {
            let dir = match data {
                Some(dir) => locate_mnist(Some(dir))?,
                None => match config.data_dir.filter(|d| d.is_dir()) {
                    Some(dir) => dir,
                    None => locate_mnist(None)?,
                },
            };
            let (_, test) = load_mnist_datasets(&dir)?;
            model.evaluate(&test, 1000)
        }
        other => Err(Error::invalid_data(
            run.config(),
            format!("unknown job `{other}`"),
        )),
    }
}
