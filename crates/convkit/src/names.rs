//! The names of convkit's settings on the command line and in files: each settings enum
//! is spelt as its JSON spells it (`horizontal_and_vertical`), with `FromStr` and
//! `Display` to match, so that a front end takes the library's own types.

/// Implements `FromStr` (through serde, so the names are the JSON ones), `Display`, and a
/// `NAMES` list for a settings enum.
macro_rules! named_settings {
    ($ty:ty, $what:literal, [$($name:literal),* $(,)?]) => {
        impl $ty {
            /// Every accepted name, as in JSON.
            pub const NAMES: &'static [&'static str] = &[$($name),*];
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::Error;

            fn from_str(name: &str) -> $crate::error::Result<Self> {
                serde_json::from_value(serde_json::Value::String(name.replace('-', "_")))
                    .map_err(|_| {
                        $crate::error::Error::InvalidConfig(format!(
                            "unknown {} `{name}`; known: {}",
                            $what,
                            <$ty>::NAMES.join(", ")
                        ))
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(name)) => f.write_str(&name),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    };
}

named_settings!(
    crate::augment::FlipMode,
    "flip mode",
    ["horizontal", "vertical", "horizontal_and_vertical"]
);
named_settings!(
    crate::augment::FillMode,
    "fill mode",
    ["reflect", "constant", "nearest", "wrap"]
);
named_settings!(crate::models::Head, "head", ["flatten", "pooled"]);
named_settings!(
    crate::workflows::transfer::TransferMode,
    "transfer mode",
    ["frozen", "features"]
);

#[cfg(test)]
mod tests {
    use crate::augment::{FillMode, FlipMode};
    use crate::models::Head;
    use crate::workflows::transfer::TransferMode;

    fn round_trips<T>(names: &[&str])
    where
        T: std::str::FromStr + std::fmt::Display,
        T::Err: std::fmt::Debug,
    {
        for name in names {
            let value: T = name.parse().unwrap();
            assert_eq!(value.to_string(), *name);
        }
    }

    #[test]
    fn every_listed_name_parses_and_prints_back() {
        round_trips::<FlipMode>(FlipMode::NAMES);
        round_trips::<FillMode>(FillMode::NAMES);
        round_trips::<Head>(Head::NAMES);
        round_trips::<TransferMode>(TransferMode::NAMES);
        assert_eq!(
            "horizontal-and-vertical".parse::<FlipMode>().unwrap(),
            FlipMode::HorizontalAndVertical
        );
        let err = "mirror".parse::<FlipMode>().unwrap_err().to_string();
        assert!(err.contains("horizontal_and_vertical"), "{err}");
    }
}
