//! `convkit export RUN_DIR`: the run's checkpoint as an ONNX file.

use std::path::{Path, PathBuf};

use tch::Device;

use super::run_dir::RunDir;
use crate::error::Result;
use crate::export::{export_onnx, ExportSummary};
use crate::runtime::Precision;

/// Where [`export_run`] writes when no path is given: `model.onnx` in the run folder.
pub fn default_onnx_path(run_dir: &Path) -> PathBuf {
    run_dir.join("model.onnx")
}

/// Exports the checkpoint of the run in `run_dir` (the best epoch when the run kept one,
/// as `evaluate` and `predict` use) to ONNX at `out`, else `RUN_DIR/model.onnx`. The model
/// is loaded on `device`; the file holds float32 weights whatever the run's precision.
pub fn export_run(run_dir: &Path, out: Option<&Path>, device: Device) -> Result<ExportSummary> {
    let run = RunDir::open(run_dir)?;
    let model = run.load_checkpoint(device, Some(Precision::Fp32))?;
    let path = out.map_or_else(|| default_onnx_path(run_dir), Path::to_owned);
    export_onnx(&model, &path)
}
