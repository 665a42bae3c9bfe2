//! Running an iterator a few items ahead on a background thread, so that the next batches
//! are gathered while the caller trains on this one.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// The items of an iterator, produced on a background thread at most `depth` items ahead
/// of the caller (a bounded channel, so memory stays bounded however slow the caller is).
///
/// The thread stops after the first `Err` item, at the end of the items, or when this is
/// dropped: dropping closes the channel, which wakes the thread if it waits to send, and
/// then waits for it, so no thread outlives its iterator. A thread that panics ends the
/// items with an `Err` rather than with a silent early end.
#[derive(Debug)]
pub struct Prefetch<T> {
    receiver: Option<Receiver<Result<T>>>,
    thread: Option<JoinHandle<()>>,
    failed: bool,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Starts producing `items` on a thread named `name`, `depth` (at least 1) items ahead.
    pub fn new<I>(name: &str, depth: usize, items: I) -> Result<Prefetch<T>>
    where
        I: Iterator<Item = Result<T>> + Send + 'static,
    {
        let (sender, receiver) = sync_channel(depth.max(1));
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for item in items {
                    let stop = item.is_err();
                    // A send fails only when the receiver is gone: nobody wants more.
                    if sender.send(item).is_err() || stop {
                        return;
                    }
                }
            })
            .map_err(|e| Error::io(format!("(thread {name})"), e))?;
        Ok(Prefetch {
            receiver: Some(receiver),
            thread: Some(thread),
            failed: false,
        })
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.failed {
            return None;
        }
        match self.receiver.as_ref()?.recv() {
            Ok(item) => {
                self.failed = item.is_err();
                Some(item)
            }
            Err(_) => {
                // The thread has ended: normally, or by a panic, which must not pass for
                // the end of the data.
                self.receiver = None;
                let panicked = self.thread.take().is_some_and(|t| t.join().is_err());
                panicked.then(|| {
                    Err(Error::InvalidConfig(
                        "the background thread preparing batches panicked".into(),
                    ))
                })
            }
        }
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Closing the channel first unblocks a thread waiting to send.
        drop(self.receiver.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn yields_every_item_in_order() {
        let items = Prefetch::new("test", 2, (0..100).map(Ok)).unwrap();
        assert_eq!(
            items.map(Result::unwrap).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
    }

    #[test]
    fn dropping_early_stops_the_thread_within_depth() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let endless = (0..).map(move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(i)
        });
        let mut items = Prefetch::new("test", 3, endless).unwrap();
        assert_eq!(items.next().unwrap().unwrap(), 0);
        drop(items);
        // Drop joined the thread: nothing more is made after it.
        let after_drop = made.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(made.load(Ordering::SeqCst), after_drop);
        // One taken, three queued, one blocked in send.
        assert!(after_drop <= 5, "{after_drop} made");
    }

    #[test]
    fn an_error_ends_the_items() {
        let items = (0..10).map(|i| {
            if i == 3 {
                Err(Error::InvalidConfig("broken".into()))
            } else {
                Ok(i)
            }
        });
        let got: Vec<Result<i32>> = Prefetch::new("test", 2, items).unwrap().collect();
        assert_eq!(got.len(), 4);
        assert!(got[3].as_ref().unwrap_err().to_string().contains("broken"));
    }

    #[test]
    fn a_panic_is_an_error_not_an_end() {
        let items = (0..10).map(|i| if i == 2 { panic!("boom") } else { Ok(i) });
        let got: Vec<Result<i32>> = Prefetch::new("test", 2, items).unwrap().collect();
        assert_eq!(got.len(), 3);
        assert!(got[2].is_err());
    }
}
