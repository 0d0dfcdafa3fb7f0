//! Ending what hone started when hone itself is told to stop (SIGINT, SIGTERM): every running
//! command's process group and every sandbox folder are registered here while they live;
//! [`stop_all`] kills the groups, removes the folders and refuses new ones, so that nothing starts
//! between the cleanup and the exit. The caller (the binary) owns the signal handling and the exit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

#[derive(Default)]
struct Live {
    stopping: bool,
    groups: HashSet<i32>,
    folders: HashSet<PathBuf>,
}

static LIVE: Mutex<Option<Live>> = Mutex::new(None);

fn live() -> MutexGuard<'static, Option<Live>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stopping_error() -> std::io::Error {
    std::io::Error::other("hone is stopping: nothing new is started")
}

/// Registration of a running process group; dropping it unregisters.
#[derive(Debug)]
pub(crate) struct RunningGroup(i32);

impl Drop for RunningGroup {
    fn drop(&mut self) {
        if let Some(live) = live().as_mut() {
            live.groups.remove(&self.0);
        }
    }
}

/// Spawn `builder` (which must start its own process group) and register the group; refused once
/// [`stop_all`] ran.
pub(crate) fn spawn(builder: &mut Command) -> std::io::Result<(Child, RunningGroup)> {
    let mut guard = live();
    let live = guard.get_or_insert_with(Live::default);
    if live.stopping {
        return Err(stopping_error());
    }
    let child = builder.spawn()?;
    let group = child.id() as i32;
    live.groups.insert(group);
    Ok((child, RunningGroup(group)))
}

/// Registration of a sandbox folder; dropping it unregisters (the folder itself is removed by its
/// owner).
#[derive(Debug)]
pub(crate) struct LiveFolder(PathBuf);

impl Drop for LiveFolder {
    fn drop(&mut self) {
        if let Some(live) = live().as_mut() {
            live.folders.remove(&self.0);
        }
    }
}

/// Create a folder with `create` and register it, both under the lock, so that [`stop_all`]
/// either sees it or refuses it.
pub(crate) fn create_folder<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path_of: impl Fn(&T) -> &Path,
) -> std::io::Result<(T, LiveFolder)> {
    let mut guard = live();
    let live = guard.get_or_insert_with(Live::default);
    if live.stopping {
        return Err(stopping_error());
    }
    let created = create()?;
    let path = path_of(&created).to_path_buf();
    live.folders.insert(path.clone());
    Ok((created, LiveFolder(path)))
}

/// What [`stop_all`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stopped {
    pub groups: usize,
    pub folders: usize,
}

/// Kill every registered process group (SIGKILL: a confined group's bwrap takes its whole PID
/// namespace with it), remove every registered sandbox folder, and refuse new ones from now on.
pub fn stop_all() -> Stopped {
    let mut guard = live();
    let live = guard.get_or_insert_with(Live::default);
    live.stopping = true;
    for group in &live.groups {
        let _ = killpg(Pid::from_raw(*group), Signal::SIGKILL);
    }
    let mut removed = 0;
    for folder in &live.folders {
        // A dying process may still create a file for a moment: try again once after a pause.
        let gone = std::fs::remove_dir_all(folder).is_ok() || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_dir_all(folder).is_ok() || !folder.exists()
        };
        if gone {
            removed += 1;
        }
    }
    Stopped {
        groups: live.groups.len(),
        folders: removed,
    }
}

/// True once [`stop_all`] ran.
pub fn is_stopping() -> bool {
    live().as_ref().is_some_and(|live| live.stopping)
}
