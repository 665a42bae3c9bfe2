//! The callbacks a run description can name. Each is registered here by one line: its
//! name in `run.json` (the variant, in snake case) and its settings type, which lives in
//! the callback's own file and builds it ([`CallbackSettings`]).

use serde::{Deserialize, Serialize};

use crate::train::{Callback, CallbackSettings, EarlyStoppingSettings, ReduceLrOnPlateauSettings};

/// Declares [`CallbackSpec`] from `Variant(Settings)` lines.
macro_rules! callback_registry {
    ($($(#[$doc:meta])* $variant:ident($settings:ty),)*) => {
        /// A callback of a run description, by name with its settings: in `run.json`,
        /// `{"name": "early_stopping", "patience": 10, ...}`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name", rename_all = "snake_case")]
        pub enum CallbackSpec {
            $($(#[$doc])* $variant($settings),)*
        }

        impl CallbackSpec {
            /// The callback, fresh.
            pub fn build(&self) -> Box<dyn Callback> {
                match self {
                    $(CallbackSpec::$variant(settings) => settings.build(),)*
                }
            }
        }
    };
}

callback_registry! {
    /// Stop when the validation loss stops improving (Keras' `EarlyStopping`).
    EarlyStopping(EarlyStoppingSettings),
    /// Lower the learning rate on a plateau (Keras' `ReduceLROnPlateau`).
    ReduceLrOnPlateau(ReduceLrOnPlateauSettings),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_named_in_json_and_build() {
        let spec = CallbackSpec::EarlyStopping(EarlyStoppingSettings {
            patience: 3,
            monitor: Default::default(),
        });
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["name"], "early_stopping");
        assert_eq!(json["patience"], 3);
        let back: CallbackSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.build().name(), "early_stopping");
        let reduce = CallbackSpec::ReduceLrOnPlateau(ReduceLrOnPlateauSettings::halving(2));
        assert_eq!(
            serde_json::to_value(&reduce).unwrap()["name"],
            "reduce_lr_on_plateau"
        );
        assert_eq!(reduce.build().name(), "reduce_lr_on_plateau");
    }
}
