//! Which settings a resumed run would change: a run resumes only with the settings it
//! started with.

use serde::Serialize;
use serde_json::Value;

/// The settings among `keys` (top-level fields of the job's JSON form) whose values differ
/// between the job a run was `saved` with and the one `given` now, one line each:
/// `epochs: the run has 30, the command line 50`.
pub fn changed_settings<T: Serialize>(saved: &T, given: &T, keys: &[&str]) -> Vec<String> {
    let (Ok(saved), Ok(given)) = (serde_json::to_value(saved), serde_json::to_value(given)) else {
        return vec!["the settings cannot be compared".into()];
    };
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (a, b) = (
                saved.get(key).unwrap_or(&Value::Null),
                given.get(key).unwrap_or(&Value::Null),
            );
            (a != b).then(|| format!("{key}: the run has {a}, the command line {b}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::MnistJob;

    #[test]
    fn names_each_changed_setting_among_the_given_keys() {
        let saved = MnistJob::new("runs/a".into());
        let given = MnistJob {
            epochs: 7,
            seed: 1,
            ..saved.clone()
        };
        assert_eq!(
            changed_settings(&saved, &given, &["epochs", "batch_size"]),
            vec!["epochs: the run has 5, the command line 7".to_string()]
        );
        assert!(changed_settings(&saved, &saved, &["epochs", "seed"]).is_empty());
    }
}
