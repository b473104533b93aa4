//! The walks of `list_page` kept between pages, so that the next page
//! resumes where the last one stopped instead of reading and sorting the
//! same directories again: for a directory of 100,000 files, reading it
//! once per page makes a whole listing by pages quadratic.
//!
//! A walk is kept under its root and the last key it served, which is the
//! `after` of the host's next page; any other call starts a walk of its
//! own. At most [`KEPT_WALKS`] are kept, none longer than [`KEPT_FOR`]
//! unresumed: a walk holds the sorted entry names of the directories it is
//! in (~40 bytes a name).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stowage_local_tree::KeyOrderWalk;

/// How many walks are kept at once: one per listing in progress.
const KEPT_WALKS: usize = 2;

/// How long a walk is kept without being resumed.
const KEPT_FOR: Duration = Duration::from_secs(60);

/// The walks kept between pages.
#[derive(Debug, Default)]
pub(crate) struct PausedWalks(Mutex<Vec<PausedWalk>>);

#[derive(Debug)]
struct PausedWalk {
    root: PathBuf,
    last_key: String,
    walk: KeyOrderWalk,
    paused: Instant,
}

impl PausedWalks {
    /// The walk of `root` that served `after` last, or a new one from
    /// just after `after`.
    pub(crate) fn resume(&self, root: &Path, after: &str) -> std::io::Result<KeyOrderWalk> {
        let paused = {
            let mut walks = self.0.lock().expect("no panics while held");
            walks.retain(|w| w.paused.elapsed() < KEPT_FOR);
            let found = walks
                .iter()
                .position(|w| !after.is_empty() && w.root == root && w.last_key == after);
            found.map(|i| walks.swap_remove(i))
        };
        match paused {
            Some(paused) => Ok(paused.walk),
            None => KeyOrderWalk::after(root, after),
        }
    }

    /// Keeps `walk` of `root`, which served `last_key` last, for the next page.
    pub(crate) fn pause(&self, root: &Path, last_key: &str, walk: KeyOrderWalk) {
        let mut walks = self.0.lock().expect("no panics while held");
        if walks.len() >= KEPT_WALKS {
            walks.remove(0);
        }
        walks.push(PausedWalk {
            root: root.to_path_buf(),
            last_key: last_key.to_string(),
            walk,
            paused: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(walks: &PausedWalks) -> Vec<String> {
        let walks = walks.0.lock().unwrap();
        walks.iter().map(|w| w.last_key.clone()).collect()
    }

    #[test]
    fn at_most_two_walks_are_kept_and_a_resumed_one_is_taken_out() {
        let root = tempfile::tempdir().unwrap();
        let walks = PausedWalks::default();
        for last_key in ["a", "b", "c"] {
            let walk = KeyOrderWalk::after(root.path(), "").unwrap();
            walks.pause(root.path(), last_key, walk);
        }
        assert_eq!(kept(&walks), ["b", "c"], "the oldest is dropped");
        walks.resume(root.path(), "c").unwrap();
        assert_eq!(kept(&walks), ["b"]);
        // Another root, or a key no walk served, starts a walk of its own.
        let other = tempfile::tempdir().unwrap();
        walks.resume(other.path(), "b").unwrap();
        walks.resume(root.path(), "x").unwrap();
        assert_eq!(kept(&walks), ["b"]);
    }
}
