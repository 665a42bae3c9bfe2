//! Which settings differ between two run descriptions: the one check behind `--resume`
//! (a run continues only with the settings it started with) and `convkit chapter8` (a kept
//! run must be the chapter's).

use serde_json::Value;

use super::description::RunSpec;

/// Where things are and how a run was found, rather than what it computes: never a
/// difference between two runs of the same recipe.
pub const NOT_SETTINGS: &[&str] = &[
    "format",
    "version",
    "recorded",
    "output.dir",
    "data.source.dir",
    "data.storage",
    "model.source.weights",
    "model.source.features_cache",
    "model.source.path",
];

/// Which settings to compare.
#[derive(Clone, Copy, Debug)]
pub enum Compared<'a> {
    /// Every setting but [`NOT_SETTINGS`] and these (dotted paths, e.g. `fit.precision`).
    AllBut(&'a [&'a str]),
    /// Only these (dotted paths, or their parents: `fit` covers `fit.epochs`).
    Only(&'a [&'a str]),
}

/// The settings that differ between `a` and `b`, one line each, in path order:
/// `fit.epochs: 30 against 50`.
pub fn differences(a: &RunSpec, b: &RunSpec, compared: Compared<'_>) -> Vec<Difference> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return vec![Difference {
            path: String::new(),
            a: Value::Null,
            b: Value::Null,
        }];
    };
    let mut found = Vec::new();
    walk("", &a, &b, &mut found);
    found.retain(|d: &Difference| match compared {
        Compared::AllBut(skip) => !NOT_SETTINGS.iter().chain(skip).any(|s| covers(s, &d.path)),
        Compared::Only(only) => only.iter().any(|s| covers(s, &d.path)),
    });
    found
}

/// One setting that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Its dotted path in the description (`fit.optimizer.learning_rate`).
    pub path: String,
    /// Its value in the first description.
    pub a: Value,
    /// Its value in the second.
    pub b: Value,
}

impl Difference {
    /// `path: the run has A, WHO B`.
    pub fn describe(&self, who: &str) -> String {
        format!("{}: the run has {}, {who} {}", self.path, self.a, self.b)
    }
}

/// Whether `setting` is `path` or one of its parents.
fn covers(setting: &str, path: &str) -> bool {
    path == setting
        || path
            .strip_prefix(setting)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Collects the leaves (and arrays, compared whole) that differ.
fn walk(path: &str, a: &Value, b: &Value, found: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(
                    &child,
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    found,
                );
            }
        }
        _ if a != b => found.push(Difference {
            path: path.to_owned(),
            a: a.clone(),
            b: b.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::presets;

    #[test]
    fn names_what_differs_and_skips_where_things_are() {
        let a = presets::mnist("runs/a".into());
        let mut b = presets::mnist("runs/b".into());
        b.fit.epochs = 7;
        b.fit.seed = 1;
        let all = differences(&a, &b, Compared::AllBut(&[]));
        let paths: Vec<&str> = all.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["fit.epochs", "fit.seed"]);
        assert_eq!(
            all[0].describe("the command line"),
            "fit.epochs: the run has 5, the command line 7"
        );
        let only = differences(&a, &b, Compared::Only(&["fit.epochs", "fit.batch_size"]));
        assert_eq!(only.len(), 1);
        assert!(differences(&a, &a, Compared::AllBut(&[])).is_empty());
        let parent = differences(&a, &b, Compared::Only(&["fit"]));
        assert_eq!(parent.len(), 2);
        assert!(differences(&a, &b, Compared::AllBut(&["fit"])).is_empty());
    }
}
