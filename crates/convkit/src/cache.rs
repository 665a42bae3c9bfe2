//! The user's cache folder, shared by everything convkit keeps between runs: downloaded
//! MNIST, pretrained weights and extracted features.

use std::ffi::OsString;
use std::path::PathBuf;

/// convkit's cache: `$XDG_CACHE_HOME/convkit`, or `$HOME/.cache/convkit`; `None` when neither
/// variable is set. A relative `XDG_CACHE_HOME` is ignored, as the XDG base-directory
/// specification asks.
pub fn cache_root() -> Option<PathBuf> {
    cache_root_from(non_empty_env("XDG_CACHE_HOME"), non_empty_env("HOME"))
}

/// The sub-folder `name` of [`cache_root`], such as `mnist`, `models` or `features`.
pub fn cache_dir(name: &str) -> Option<PathBuf> {
    cache_root().map(|root| root.join(name))
}

fn cache_root_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let cache = xdg_cache_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("convkit"))
}

/// The value of the environment variable `name`, treating an empty value as unset.
pub(crate) fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_an_absolute_xdg_cache_home() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            cache_root_from(some("/xdg"), some("/home/u")),
            Some(PathBuf::from("/xdg/convkit"))
        );
        assert_eq!(
            cache_root_from(some("relative"), some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/convkit"))
        );
        assert_eq!(
            cache_root_from(None, some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/convkit"))
        );
        assert_eq!(cache_root_from(None, None), None);
    }
}
