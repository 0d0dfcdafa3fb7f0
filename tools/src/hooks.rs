//! Installing and removing hone's git hook scripts without clobbering anyone else's (the files
//! only: `hone hook` in the CLI finds the hooks folder and prints the outcomes).
//!
//! A hook already in place (written by a person, husky, the pre-commit framework...) is moved to
//! `NAME.hone-backup` and hone's script runs it first, with the same arguments and input, stopping
//! when it fails; `uninstall` moves it back. Hone's scripts carry a marker line so a second install
//! only refreshes them (idempotent) and uninstall never removes a script it did not write. A hone
//! script that the user edited after install is not removed silently: uninstall leaves it in place
//! unless forced, and then first keeps a copy as `NAME.hone-edited`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The hooks hone knows how to run, in the order `install` sets them up.
pub const HOOK_NAMES: [&str; 3] = ["pre-commit", "prepare-commit-msg", "pre-push"];

/// First line after the shebang of every script hone writes; how hone recognises its own hooks.
const MARKER: &str = "# hone-managed-hook:";
const BACKUP_SUFFIX: &str = ".hone-backup";
const EDITED_SUFFIX: &str = ".hone-edited";

/// What is at a hook's path right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookState {
    /// Nothing there.
    Absent,
    /// Hone's script; `chained` when a previous hook is kept beside it and runs first.
    Hone { chained: bool },
    /// Someone else's hook (or a symlink to one).
    Foreign,
}

/// What `install` or `uninstall` did to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    /// An existing hook was moved aside and now runs first.
    Chained {
        backup: PathBuf,
    },
    /// Hone's script was already there; rewritten when its text changed (e.g. a new binary path).
    Refreshed,
    Unchanged,
    Removed,
    /// Hone's script removed and the hook it had replaced put back.
    Restored,
    /// Nothing of hone's to remove.
    NotInstalled,
    /// Hone's script was edited since install: left in place (a forced uninstall removes it).
    KeptEdited,
    /// Hone's edited script removed (forced) after keeping a copy of it.
    RemovedEdited {
        copy: PathBuf,
    },
    /// Someone replaced hone's script since install: left alone, with the backup that is still there.
    LeftForeign {
        backup: Option<PathBuf>,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Installed => write!(f, "installed"),
            Self::Chained { backup } => write!(
                f,
                "installed; the existing hook was kept as {} and runs first",
                backup.display()
            ),
            Self::Refreshed => write!(f, "updated"),
            Self::Unchanged => write!(f, "already installed"),
            Self::Removed => write!(f, "removed"),
            Self::Restored => write!(f, "removed; the previous hook is back in place"),
            Self::NotInstalled => write!(f, "not installed"),
            Self::KeptEdited => write!(f, "hone's script was edited since install: left in place"),
            Self::RemovedEdited { copy } => write!(
                f,
                "removed; your edits to it are kept in {}",
                copy.display()
            ),
            Self::LeftForeign { backup: None } => {
                write!(f, "not hone's script any more: left as it is")
            }
            Self::LeftForeign {
                backup: Some(backup),
            } => write!(
                f,
                "not hone's script any more: left as it is, and so is the older hook at {}",
                backup.display()
            ),
        }
    }
}

/// The backup path of hook `name` in `dir`.
pub fn backup_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{BACKUP_SUFFIX}"))
}

/// Whether something (a file, a symlink, even a broken one) is at `path`.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn is_hone_script(path: &Path) -> bool {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return false;
    };
    if !metadata.is_file() {
        return false;
    }
    fs::read(path)
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .lines()
                .take(3)
                .any(|line| line.starts_with(MARKER))
        })
        .unwrap_or(false)
}

/// What is at hook `name` in `dir`.
pub fn state(dir: &Path, name: &str) -> HookState {
    let path = dir.join(name);
    if is_hone_script(&path) {
        HookState::Hone {
            chained: exists(&backup_path(dir, name)),
        }
    } else if exists(&path) {
        HookState::Foreign
    } else {
        HookState::Absent
    }
}

/// Quote `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script for hook `name`, calling `hone hook run NAME ARGS` through `hone_bin` (falling back
/// to `hone` on PATH when that binary has moved). A missing hone never blocks git: the script warns
/// and lets the operation through.
pub fn script(name: &str, hone_bin: &Path) -> String {
    let bin = shell_quote(&hone_bin.to_string_lossy());
    let header = format!(
        "#!/bin/sh\n\
         {MARKER} {name}\n\
         # Written by `hone hook install`; `hone hook uninstall` removes it and puts back the hook it\n\
         # replaced (kept beside it as {name}{BACKUP_SUFFIX}, which runs first).\n\
         # HONE_SKIP_HOOKS=1 skips hone (the previous hook still runs).\n\
         hone_bin={bin}\n\
         previous=\"$(dirname -- \"$0\")/{name}{BACKUP_SUFFIX}\"\n\
         find_hone() {{\n\
         \x20   [ -x \"$hone_bin\" ] && return 0\n\
         \x20   hone_bin=$(command -v hone 2>/dev/null) && return 0\n\
         \x20   echo \"hone: binary not found, skipping the {name} hook (\\`hone hook uninstall\\` removes it)\" >&2\n\
         \x20   return 1\n\
         }}\n"
    );
    // pre-push reads the pushed refs on stdin: keep a copy so both hooks see all of it.
    let body = if name == "pre-push" {
        "input=$(mktemp \"${TMPDIR:-/tmp}/hone-pre-push.XXXXXX\") || exit 1\n\
         trap 'rm -f \"$input\"' EXIT\n\
         cat > \"$input\"\n\
         if [ -x \"$previous\" ]; then\n\
         \x20   \"$previous\" \"$@\" < \"$input\" || exit $?\n\
         fi\n\
         [ -n \"${HONE_SKIP_HOOKS:-}\" ] && exit 0\n\
         find_hone || exit 0\n\
         \"$hone_bin\" hook run pre-push \"$@\" < \"$input\"\n\
         exit $?\n"
            .to_owned()
    } else {
        format!(
            "if [ -x \"$previous\" ]; then\n\
             \x20   \"$previous\" \"$@\" || exit $?\n\
             fi\n\
             [ -n \"${{HONE_SKIP_HOOKS:-}}\" ] && exit 0\n\
             find_hone || exit 0\n\
             exec \"$hone_bin\" hook run {name} \"$@\"\n"
        )
    };
    header + &body
}

/// Write `text` to `path` as an executable, atomically (a reader never sees half a script).
fn write_script(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|source| Error::io(dir, source))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(|source| Error::io(file.path(), source))?;
    set_executable(file.path())?;
    file.persist(path)
        .map_err(|error| Error::io(path, error.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|source| Error::io(path, source))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> Result<()> {
    Ok(())
}

/// Install hook `name` in `dir`. A foreign hook is moved to its backup path and chained; when a
/// backup is already there (an older install was half undone), `force` moves that older backup to
/// `NAME.hone-backup.N` instead of refusing, so no hook is ever deleted.
pub fn install(dir: &Path, name: &str, hone_bin: &Path, force: bool) -> Result<Outcome> {
    fs::create_dir_all(dir).map_err(|source| Error::io(dir, source))?;
    let path = dir.join(name);
    let text = script(name, hone_bin);
    match state(dir, name) {
        HookState::Hone { .. } => {
            let current = fs::read_to_string(&path).unwrap_or_default();
            if current == text && !force {
                return Ok(Outcome::Unchanged);
            }
            write_script(&path, &text)?;
            Ok(Outcome::Refreshed)
        }
        HookState::Absent => {
            write_script(&path, &text)?;
            Ok(Outcome::Installed)
        }
        HookState::Foreign => {
            let backup = backup_path(dir, name);
            if exists(&backup) {
                if !force {
                    return Err(Error::HookBackupExists { hook: path, backup });
                }
                let spare = (1..)
                    .map(|n| dir.join(format!("{name}{BACKUP_SUFFIX}.{n}")))
                    .find(|candidate| !exists(candidate))
                    .unwrap_or_else(|| dir.join(format!("{name}{BACKUP_SUFFIX}.old")));
                fs::rename(&backup, &spare).map_err(|source| Error::io(&backup, source))?;
            }
            fs::rename(&path, &backup).map_err(|source| Error::io(&path, source))?;
            if let Err(error) = write_script(&path, &text) {
                // Put the user's hook back rather than leave them with none.
                let _ = fs::rename(&backup, &path);
                return Err(error);
            }
            Ok(Outcome::Chained { backup })
        }
    }
}

/// Whether hone's script at `path` differs from what `install` wrote (the user edited it).
fn is_edited(path: &Path, name: &str) -> bool {
    let Ok(current) = fs::read_to_string(path) else {
        return true;
    };
    let bin = current
        .lines()
        .find_map(|line| line.strip_prefix("hone_bin="))
        .and_then(shell_unquote);
    match bin {
        Some(bin) => current != script(name, Path::new(&bin)),
        None => true,
    }
}

/// Undo `shell_quote`.
fn shell_unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace(r"'\''", "'"))
}

/// Remove hone's hook `name` from `dir`, putting back the hook it replaced. A script the user
/// edited is left in place unless `force`, which keeps a copy as `NAME.hone-edited` first.
pub fn uninstall(dir: &Path, name: &str, force: bool) -> Result<Outcome> {
    let path = dir.join(name);
    let backup = backup_path(dir, name);
    match state(dir, name) {
        HookState::Hone { chained } => {
            let mut copy = None;
            if is_edited(&path, name) {
                if !force {
                    return Ok(Outcome::KeptEdited);
                }
                let spare = (0..)
                    .map(|n| match n {
                        0 => dir.join(format!("{name}{EDITED_SUFFIX}")),
                        n => dir.join(format!("{name}{EDITED_SUFFIX}.{n}")),
                    })
                    .find(|candidate| !exists(candidate))
                    .unwrap_or_else(|| dir.join(format!("{name}{EDITED_SUFFIX}.old")));
                fs::copy(&path, &spare).map_err(|source| Error::io(&path, source))?;
                copy = Some(spare);
            }
            if chained {
                // rename over the script: at no moment is there no hook at all.
                fs::rename(&backup, &path).map_err(|source| Error::io(&backup, source))?;
            } else {
                fs::remove_file(&path).map_err(|source| Error::io(&path, source))?;
            }
            Ok(match (copy, chained) {
                (Some(copy), _) => Outcome::RemovedEdited { copy },
                (None, true) => Outcome::Restored,
                (None, false) => Outcome::Removed,
            })
        }
        HookState::Absent if exists(&backup) => {
            fs::rename(&backup, &path).map_err(|source| Error::io(&backup, source))?;
            Ok(Outcome::Restored)
        }
        HookState::Absent => Ok(Outcome::NotInstalled),
        HookState::Foreign => Ok(Outcome::LeftForeign {
            backup: exists(&backup).then_some(backup),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn install_chains_and_uninstall_restores_a_foreign_hook() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("pre-commit");
        fs::write(&hook, "#!/bin/sh\necho mine\n").unwrap();
        let bin = Path::new("/opt/hone bin/hone");

        let outcome = install(dir.path(), "pre-commit", bin, false).unwrap();
        assert!(matches!(outcome, Outcome::Chained { .. }));
        assert_eq!(
            state(dir.path(), "pre-commit"),
            HookState::Hone { chained: true }
        );
        assert_eq!(
            fs::read_to_string(backup_path(dir.path(), "pre-commit")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        // A second install changes nothing, and never backs up hone's own script.
        assert_eq!(
            install(dir.path(), "pre-commit", bin, false).unwrap(),
            Outcome::Unchanged
        );
        assert_eq!(
            fs::read_to_string(backup_path(dir.path(), "pre-commit")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );

        assert_eq!(
            uninstall(dir.path(), "pre-commit", false).unwrap(),
            Outcome::Restored
        );
        assert_eq!(fs::read_to_string(&hook).unwrap(), "#!/bin/sh\necho mine\n");
        assert!(!exists(&backup_path(dir.path(), "pre-commit")));
        assert_eq!(
            uninstall(dir.path(), "pre-commit", false).unwrap(),
            Outcome::LeftForeign { backup: None }
        );
    }

    #[test]
    fn a_second_foreign_hook_with_a_backup_needs_force_and_keeps_both() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pre-push"), "new").unwrap();
        fs::write(backup_path(dir.path(), "pre-push"), "old").unwrap();
        let bin = Path::new("/usr/bin/hone");
        assert!(install(dir.path(), "pre-push", bin, false).is_err());
        assert_eq!(
            fs::read_to_string(dir.path().join("pre-push")).unwrap(),
            "new"
        );

        install(dir.path(), "pre-push", bin, true).unwrap();
        assert_eq!(
            fs::read_to_string(backup_path(dir.path(), "pre-push")).unwrap(),
            "new"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("pre-push.hone-backup.1")).unwrap(),
            "old"
        );
    }

    #[test]
    fn the_binary_path_is_shell_quoted() {
        let text = script("pre-commit", Path::new("/tmp/it's here/hone"));
        assert!(text.contains(r"hone_bin='/tmp/it'\''s here/hone'"));
        assert!(text.lines().nth(1).unwrap().starts_with(MARKER));
    }

    #[test]
    fn uninstall_keeps_a_script_the_user_edited() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/opt/it's hone/hone");
        install(dir.path(), "pre-commit", bin, false).unwrap();
        let hook = dir.path().join("pre-commit");
        assert!(!is_edited(&hook, "pre-commit"));
        let edited = format!("{}echo my addition\n", fs::read_to_string(&hook).unwrap());
        fs::write(&hook, &edited).unwrap();

        let outcome = uninstall(dir.path(), "pre-commit", false).unwrap();
        assert_eq!(outcome, Outcome::KeptEdited);
        assert_eq!(fs::read_to_string(&hook).unwrap(), edited);

        let outcome = uninstall(dir.path(), "pre-commit", true).unwrap();
        let copy = dir.path().join("pre-commit.hone-edited");
        assert_eq!(outcome, Outcome::RemovedEdited { copy: copy.clone() });
        assert!(!hook.exists());
        assert_eq!(fs::read_to_string(copy).unwrap(), edited);
    }
}
