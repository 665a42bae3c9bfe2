//! Which set of fitting settings a run starts from.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The fitting settings a run starts from: how it is fitted (optimizer, schedule, epochs,
/// regularizers), never what is fitted (the model, its augmentation and dropout stay the
/// user's). Settings given beside it override it. See
/// [`presets::apply_recipe`](crate::workflows::presets::apply_recipe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// The book's: RMSprop at a constant rate, for the chapter's epochs.
    #[default]
    Book,
    /// convkit's: the chapter's accuracy in a fraction of the epochs (AdamW, a one-cycle
    /// schedule, label smoothing, a moving average of the weights), per kind of model.
    Fast,
}

impl Recipe {
    /// Both, in the order `--help` lists them.
    pub const ALL: [Recipe; 2] = [Recipe::Book, Recipe::Fast];

    /// Its name: `book` or `fast`.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Book => "book",
            Recipe::Fast => "fast",
        }
    }
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Recipe {
    type Err = Error;

    fn from_str(name: &str) -> Result<Recipe> {
        Recipe::ALL
            .into_iter()
            .find(|r| r.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown recipe `{name}`; the recipes are book, fast"
                ))
            })
    }
}
