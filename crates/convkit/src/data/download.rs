//! Fetching a file over HTTP(S) and checking it against a known sha256 before it appears.
//!
//! The file is streamed to a temporary name beside its destination while its hash is
//! computed, and only renamed into place when the hash matches, so a stopped or corrupted
//! download never leaves a file that a later run would trust.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::atomic_file::write_atomic_with;
use crate::error::{Error, Result};

/// How long to wait for a connection, and for each read once connected. A stalled server
/// fails the download instead of hanging it; a slow but live one is left to finish.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the buffer the response body is streamed through.
const CHUNK: usize = 64 * 1024;

/// Downloads `url` to `dest`, checking that the content's sha256 is `sha256_hex`
/// (64 hex digits, either case).
///
/// Creates `dest`'s parent folder. The content goes to a temporary file beside `dest` and
/// is renamed to `dest` only once the hash matches; on any failure the temporary file is
/// removed and an existing `dest` is left as it was. With `progress`, a progress bar with
/// bytes, total and rate is drawn on stderr when stderr is a terminal.
///
/// # Errors
/// [`Error::Download`] naming the url for an HTTP error status (with the status), a
/// connection failure or timeout, a body cut short, or a hash mismatch (with the expected
/// and the actual hash); [`Error::Io`] when the file cannot be written.
pub fn download_verified(url: &str, dest: &Path, sha256_hex: &str, progress: bool) -> Result<()> {
    let failed = |message: String| Error::Download {
        url: url.to_string(),
        message,
    };
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(TIMEOUT))
        .timeout_per_read(Some(TIMEOUT))
        // Statuses are checked below, so that the message can carry the reason phrase.
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered HTTP {status}")));
    }
    let body = response.into_body();
    let bar = progress_bar(body.content_length(), progress, dest);
    let mut reader = body.into_reader();

    let result = write_atomic_with(dest, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(failed(format!("reading the response failed: {e}"))),
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Error::io(tmp, e))?;
            bar.inc(n as u64);
        }
        file.sync_all().map_err(|e| Error::io(tmp, e))?;
        let actual = format!("{:x}", hasher.finalize());
        if !actual.eq_ignore_ascii_case(sha256_hex.trim()) {
            return Err(failed(format!(
                "sha256 mismatch: expected {}, got {actual}; the file was discarded",
                sha256_hex.trim()
            )));
        }
        Ok(())
    });
    match &result {
        Ok(()) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    result
}

/// The lowercase hex sha256 of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A progress bar for a download of `len` bytes (a spinner when unknown), hidden unless
/// `progress` is asked for; indicatif itself hides it when stderr is not a terminal.
fn progress_bar(len: Option<u64>, progress: bool, dest: &Path) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{spinner} {msg} {bytes} {binary_bytes_per_sec}",
        ),
    };
    // The templates are constants; should one ever fail to parse, a plain bar still works.
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    bar.with_style(style.progress_chars("=> "))
        .with_message(name)
}

/// A local HTTP server for tests, so that no test ever touches the network.
#[cfg(test)]
pub(crate) mod test_server {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    /// Serves the files of one folder at `http://127.0.0.1:<port>/<name>` (404 for anything
    /// else) and records every path asked for; stops when dropped.
    pub(crate) struct FileServer {
        server: Arc<tiny_http::Server>,
        thread: Option<JoinHandle<()>>,
        /// The base url, ending in `/`.
        pub(crate) url: String,
        /// The request paths received, in order.
        pub(crate) requests: Arc<Mutex<Vec<String>>>,
    }

    impl FileServer {
        pub(crate) fn serve(root: PathBuf) -> Self {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let port = server.server_addr().to_ip().unwrap().port();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let thread = {
                let (server, requests) = (Arc::clone(&server), Arc::clone(&requests));
                std::thread::spawn(move || {
                    for request in server.incoming_requests() {
                        let path = request.url().trim_start_matches('/').to_string();
                        requests.lock().unwrap().push(path.clone());
                        let file = (!path.contains("..") && !path.is_empty())
                            .then(|| std::fs::File::open(root.join(&path)).ok())
                            .flatten();
                        let _ = match file {
                            Some(file) => request.respond(tiny_http::Response::from_file(file)),
                            None => request.respond(
                                tiny_http::Response::from_string("no such file")
                                    .with_status_code(404),
                            ),
                        };
                    }
                })
            };
            FileServer {
                server,
                thread: Some(thread),
                url: format!("http://127.0.0.1:{port}/"),
                requests,
            }
        }
    }

    impl Drop for FileServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::FileServer;
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn serve(files: &[(&str, &[u8])]) -> (tempfile::TempDir, FileServer) {
        let root = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(root.path().join(name), content).unwrap();
        }
        let server = FileServer::serve(root.path().to_path_buf());
        (root, server)
    }

    #[test]
    fn downloads_into_a_new_folder_when_the_hash_matches() {
        let (_root, server) = serve(&[("hello.txt", b"hello")]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("nested/folder/hello.txt");
        download_verified(
            &format!("{}hello.txt", server.url),
            &dest,
            HELLO_SHA256,
            true,
        )
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            1,
            "a temporary file was left"
        );
        assert_eq!(sha256_file(&dest).unwrap(), HELLO_SHA256);
    }

    #[test]
    fn the_hash_is_compared_case_insensitively() {
        let (_root, server) = serve(&[("hello.txt", b"hello")]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("hello.txt");
        download_verified(
            &format!("{}hello.txt", server.url),
            &dest,
            &HELLO_SHA256.to_uppercase(),
            false,
        )
        .unwrap();
        assert!(dest.is_file());
    }

    #[test]
    fn wrong_content_is_discarded_and_reported_with_both_hashes() {
        let (_root, server) = serve(&[("hello.txt", b"HELLO, tampered")]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("hello.txt");
        let url = format!("{}hello.txt", server.url);
        let err = download_verified(&url, &dest, HELLO_SHA256, false).unwrap_err();
        assert!(matches!(err, Error::Download { .. }), "{err:?}");
        let msg = err.to_string();
        let actual = format!("{:x}", Sha256::digest(b"HELLO, tampered"));
        assert!(
            msg.contains(&url) && msg.contains(HELLO_SHA256) && msg.contains(&actual),
            "{msg}"
        );
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(out.path()).unwrap().count(),
            0,
            "a temporary file was left"
        );
    }

    #[test]
    fn a_failed_download_keeps_an_existing_file() {
        let (_root, server) = serve(&[("hello.txt", b"tampered")]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("hello.txt");
        std::fs::write(&dest, b"previous").unwrap();
        assert!(download_verified(
            &format!("{}hello.txt", server.url),
            &dest,
            HELLO_SHA256,
            false
        )
        .is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"previous");
    }

    #[test]
    fn http_404_is_a_clear_error() {
        let (_root, server) = serve(&[]);
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("missing.gz");
        let url = format!("{}missing.gz", server.url);
        let err = download_verified(&url, &dest, HELLO_SHA256, false).unwrap_err();
        assert!(matches!(err, Error::Download { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&url) && msg.contains("HTTP 404"), "{msg}");
        assert!(!dest.exists());
    }

    #[test]
    fn a_refused_connection_is_a_download_error() {
        // Bind then drop a listener to get a local port that nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/x.gz");
        let err =
            download_verified(&url, &out.path().join("x.gz"), HELLO_SHA256, false).unwrap_err();
        assert!(matches!(err, Error::Download { .. }), "{err:?}");
        assert!(err.to_string().contains(&url));
    }
}
