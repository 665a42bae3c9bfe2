//! The names of convkit's settings on the command line and in files: each settings enum
//! is spelt as its JSON spells it (`horizontal_and_vertical`), with `FromStr` and
//! `Display` to match, so that a front end takes the library's own types. Each enum names
//! itself with `named_settings!` beside its definition.

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

pub(crate) use named_settings;

/// Checks that every name in `names` parses and prints back as itself.
#[cfg(test)]
pub(crate) fn assert_names_round_trip<T>(names: &[&str])
where
    T: std::str::FromStr + std::fmt::Display,
    T::Err: std::fmt::Debug,
{
    for name in names {
        let value: T = name.parse().unwrap();
        assert_eq!(value.to_string(), *name);
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::assert_names_round_trip;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Shade {
        Light,
        DarkGrey,
    }
    named_settings!(Shade, "shade", ["light", "dark_grey"]);

    #[test]
    fn names_parse_as_json_spells_them_and_print_back() {
        assert_names_round_trip::<Shade>(Shade::NAMES);
        assert_eq!("dark-grey".parse::<Shade>().unwrap(), Shade::DarkGrey);
        assert_eq!(Shade::DarkGrey.to_string(), "dark_grey");
        let err = "black".parse::<Shade>().unwrap_err().to_string();
        assert!(err.contains("unknown shade `black`"), "{err}");
        assert!(err.contains("light, dark_grey"), "{err}");
    }
}
