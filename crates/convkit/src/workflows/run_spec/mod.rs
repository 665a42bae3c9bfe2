//! The run description ([`RunSpec`]): one versioned, tagged type for every training run,
//! nested as data / model / fit / callbacks / evaluation / output. A run folder's
//! `run.json` is this type; [`RunSpec::read`] also reads the files earlier versions wrote.

pub mod callback_spec;
pub mod data_spec;
pub mod description;
pub mod differences;
pub mod evaluation_spec;
pub mod legacy_v1;
pub mod model_spec;
pub mod recipe;
mod run_json;

pub use callback_spec::CallbackSpec;
pub use data_spec::{DataSource, DataSpec, Decoding, StorageSpec};
pub use description::{
    Checkpoint, OutputSpec, Recorded, RunKind, RunSpec, RUN_FORMAT, RUN_VERSION,
};
pub use differences::{differences, Compared, Difference};
pub use evaluation_spec::EvaluationSpec;
pub use model_spec::{ModelSource, ModelSpec, Unfreeze};
pub use recipe::Recipe;
