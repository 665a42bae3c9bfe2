//! The chapter's runs as run descriptions: each preset returns a [`RunSpec`] with the
//! book's settings, for a front end to adjust and [`super::pipeline::run`] to run.
//!
//! [`RunSpec`]: super::run_spec::RunSpec

mod finetune;
mod mnist;
mod recipe;
mod train;

pub use finetune::{finetune, finetune_of};
pub use mnist::mnist;
pub use recipe::apply_recipe;
pub use train::train;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::run_spec::RunSpec;

    /// What a preset describes is what `run.json` holds and what is read back.
    #[test]
    fn every_preset_survives_a_run_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        let mut train_spec = train("data".into(), "runs/t".into());
        train_spec.model.augmentation = crate::models::chapter_augmentation();
        train_spec
            .callbacks
            .push(crate::workflows::run_spec::CallbackSpec::EarlyStopping(
                crate::train::EarlyStoppingSettings {
                    patience: 4,
                    monitor: Default::default(),
                },
            ));
        for spec in [mnist("runs/m".into()), train_spec] {
            spec.check().unwrap();
            spec.write(&path).unwrap();
            assert_eq!(RunSpec::read(&path).unwrap(), spec);
        }
    }
}
