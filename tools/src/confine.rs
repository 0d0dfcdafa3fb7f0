//! Confinement of commands that run model-written code (the tests of a candidate, a hook's check).
//!
//! The default is bubblewrap (`bwrap`): the whole file system is mounted read-only, the sandbox
//! folder, a private `/tmp` and a few named cache folders are writable, the network is unshared
//! (only an unconnected loopback is left), and the command runs in its own PID namespace with
//! `--die-with-parent`, so that nothing it starts (not even a `setsid` child) outlives it or hone.
//! Where `bwrap` is missing or cannot start (no user namespaces), the command gets what the kernel
//! offers without it: `no_new_privs` (set with prctl between fork and exec); it can then write
//! wherever the user can, which the caller must say loudly. Landlock is detected (is it in the
//! kernel's active LSM list?) and reported, but not applied: hone has no Landlock ruleset yet.
//!
//! This module decides and builds; it never prints. `run_command` is the one place that spawns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// How strictly commands are confined (`--sandbox`, `[sandbox] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Read-only file system except the sandbox, a private `/tmp` and the listed cache folders.
    #[default]
    Strict,
    /// As strict, but the host's `/tmp` and the user's cache folders (`~/.cache`, cargo's and
    /// npm's caches) are writable, for toolchains that insist on them.
    Workspace,
    /// No confinement (the process group is still killed at the end).
    Off,
}

impl SandboxMode {
    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Workspace => "workspace",
            Self::Off => "off",
        }
    }
}

impl std::str::FromStr for SandboxMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "strict" => Ok(Self::Strict),
            "workspace" => Ok(Self::Workspace),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown sandbox mode `{other}`: expected strict, workspace or off"
            )),
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfinePolicy {
    pub mode: SandboxMode,
    /// Let the command use the network (default false: a fresh network namespace).
    pub network: bool,
    /// Extra folders the command may write (shared caches such as a pip cache).
    pub writable: Vec<PathBuf>,
}

/// The confinement a command actually gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// bubblewrap: read-only root, namespaces, die-with-parent.
    Bubblewrap,
    /// Only `no_new_privs`: the command can write wherever the user can and use the network.
    NoNewPrivileges,
    /// Nothing (`--sandbox off`, or a command run outside any sandbox).
    Unconfined,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bubblewrap => "bubblewrap",
            Self::NoNewPrivileges => "no-new-privs only",
            Self::Unconfined => "none",
        }
    }
}

/// The paths of one confined run, with the policy they come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confinement {
    pub policy: ConfinePolicy,
    /// Folders the command may write besides `/tmp`: the sandbox folder, the shared cargo target.
    pub writable: Vec<PathBuf>,
    /// Folders that must stay readable even when they lie under the private `/tmp` (the user's
    /// repository: linked dependency folders and git alternates point into it).
    pub readable: Vec<PathBuf>,
}

/// Which confinement is active for a mode, and why (`hone sandbox check`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfineStatus {
    pub mode: SandboxMode,
    pub mechanism: Mechanism,
    /// The bwrap binary found (on PATH, or named by `HONE_BWRAP`).
    pub bwrap: Option<PathBuf>,
    /// Whether the kernel lists Landlock among its active security modules.
    pub landlock_enforced: bool,
    /// One line: why this mechanism.
    pub reason: String,
}

/// Environment variable naming the bwrap binary to use (empty: behave as if none is installed).
pub const BWRAP_ENV: &str = "HONE_BWRAP";

/// Which confinement commands get under `mode` on this machine (bwrap is tried once per binary).
pub fn status(mode: SandboxMode) -> ConfineStatus {
    let landlock_enforced = landlock_enforced();
    let bwrap = find_bwrap();
    let (mechanism, reason) = match (mode, &bwrap) {
        (SandboxMode::Off, _) => (Mechanism::Unconfined, "sandbox mode off".to_owned()),
        (_, None) => (
            Mechanism::NoNewPrivileges,
            if std::env::var_os(BWRAP_ENV).is_some() {
                format!("bwrap not found: {BWRAP_ENV} names no file")
            } else {
                "bwrap not found on PATH".to_owned()
            },
        ),
        (_, Some(path)) => match probe_bwrap(path) {
            Ok(()) => (
                Mechanism::Bubblewrap,
                format!(
                    "{} starts: read-only root, writable sandbox and {}, {}",
                    path.display(),
                    if mode == SandboxMode::Strict {
                        "private /tmp"
                    } else {
                        "shared /tmp and caches"
                    },
                    "PID namespace, die-with-parent"
                ),
            ),
            Err(why) => (
                Mechanism::NoNewPrivileges,
                format!("{} cannot start here: {why}", path.display()),
            ),
        },
    };
    ConfineStatus {
        mode,
        mechanism,
        bwrap,
        landlock_enforced,
        reason,
    }
}

/// True when the kernel's active LSM list names Landlock (it may be built in but not enforced).
pub fn landlock_enforced() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|list| list.trim().split(',').any(|name| name == "landlock"))
        .unwrap_or(false)
}

fn find_bwrap() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os(BWRAP_ENV) {
        let path = PathBuf::from(named);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| candidate.is_file())
}

/// Start bwrap once with the namespaces hone needs; the verdict is kept per binary.
fn probe_bwrap(path: &Path) -> Result<(), String> {
    static PROBES: OnceLock<Mutex<HashMap<PathBuf, Result<(), String>>>> = OnceLock::new();
    let probes = PROBES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(known) = probes.lock().ok().and_then(|map| map.get(path).cloned()) {
        return known;
    }
    let result = Command::new(path)
        .args(base_arguments(false))
        .args(["--tmpfs", "/tmp", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| error.to_string())
        .and_then(|output| {
            if output.status.success() {
                Ok(())
            } else {
                let message = String::from_utf8_lossy(&output.stderr);
                Err(message
                    .lines()
                    .next()
                    .unwrap_or("exited with an error")
                    .to_owned())
            }
        });
    if let Ok(mut map) = probes.lock() {
        map.insert(path.to_path_buf(), result.clone());
    }
    result
}

/// Namespaces and the read-only root, common to the probe and real runs.
fn base_arguments(network: bool) -> Vec<&'static str> {
    let mut arguments = vec![
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ];
    if !network {
        arguments.push("--unshare-net");
    }
    arguments.extend([
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
    ]);
    arguments
}

/// Cache folders a `workspace` sandbox may write, when they exist.
fn workspace_caches() -> Vec<PathBuf> {
    let mut caches = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        caches.push(home.join(".cache"));
        caches.push(home.join(".npm"));
        caches.push(home.join(".cargo").join("registry"));
        caches.push(home.join(".cargo").join("git"));
    }
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME").map(PathBuf::from) {
        caches.push(cargo_home.join("registry"));
        caches.push(cargo_home.join("git"));
    }
    caches
}

/// The `Command` that runs `sh -c shell_command` in `cwd` under `confinement` (None: unconfined),
/// and the mechanism it gets.
pub(crate) fn command(
    shell_command: &str,
    cwd: &Path,
    confinement: Option<&Confinement>,
) -> (Command, Mechanism) {
    let Some(confinement) = confinement else {
        return (shell(shell_command, cwd), Mechanism::Unconfined);
    };
    let status = status(confinement.policy.mode);
    match (&status.mechanism, &status.bwrap) {
        (Mechanism::Bubblewrap, Some(bwrap)) => (
            bwrap_command(bwrap, shell_command, cwd, confinement),
            Mechanism::Bubblewrap,
        ),
        (Mechanism::Unconfined, _) => (shell(shell_command, cwd), Mechanism::Unconfined),
        _ => {
            let mut builder = shell(shell_command, cwd);
            no_new_privileges(&mut builder);
            (builder, Mechanism::NoNewPrivileges)
        }
    }
}

fn shell(shell_command: &str, cwd: &Path) -> Command {
    let mut builder = Command::new("sh");
    builder.arg("-c").arg(shell_command).current_dir(cwd);
    builder
}

/// The bwrap argument list (without the binary), public to the crate for tests.
pub(crate) fn bwrap_arguments(
    shell_command: &str,
    cwd: &Path,
    confinement: &Confinement,
) -> Vec<std::ffi::OsString> {
    let policy = &confinement.policy;
    let mut arguments: Vec<std::ffi::OsString> = base_arguments(policy.network)
        .into_iter()
        .map(Into::into)
        .collect();
    if policy.mode == SandboxMode::Workspace {
        push_bind(&mut arguments, "--bind", Path::new("/tmp"));
    } else {
        // A private /tmp: the sandbox folder (usually under /tmp) is bound back in below.
        arguments.extend(["--tmpfs".into(), "/tmp".into()]);
    }
    // Readable paths first (under a private /tmp they would vanish), writable ones after, so a
    // writable folder inside a readable one (the shared cargo target in `.git/hone/`) stays so.
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for path in confinement.readable.iter().chain(home.iter()) {
        push_bind(&mut arguments, "--ro-bind-try", path);
    }
    let caches = if policy.mode == SandboxMode::Workspace {
        workspace_caches()
    } else {
        Vec::new()
    };
    for path in confinement
        .writable
        .iter()
        .chain(&policy.writable)
        .chain(&caches)
    {
        push_bind(&mut arguments, "--bind-try", path);
    }
    if policy.mode == SandboxMode::Strict {
        // Temporary files and per-user caches (Go's build cache, pip, ...) go to the private /tmp:
        // cold for each run, but writable, where `$HOME/.cache` is not.
        arguments.extend(["--setenv".into(), "TMPDIR".into(), "/tmp".into()]);
        arguments.extend([
            "--setenv".into(),
            "XDG_CACHE_HOME".into(),
            "/tmp/.cache".into(),
        ]);
    }
    arguments.extend([
        "--chdir".into(),
        cwd.into(),
        "sh".into(),
        "-c".into(),
        shell_command.into(),
    ]);
    arguments
}

/// `FLAG PATH PATH`: mount `path` at the same place.
fn push_bind(arguments: &mut Vec<std::ffi::OsString>, flag: &str, path: &Path) {
    arguments.push(flag.into());
    arguments.push(path.into());
    arguments.push(path.into());
}

fn bwrap_command(
    bwrap: &Path,
    shell_command: &str,
    cwd: &Path,
    confinement: &Confinement,
) -> Command {
    let mut builder = Command::new(bwrap);
    builder
        .args(bwrap_arguments(shell_command, cwd, confinement))
        .current_dir(cwd);
    builder
}

/// Set `no_new_privs` in the child between fork and exec: setuid binaries then gain nothing.
#[allow(unsafe_code)]
fn no_new_privileges(builder: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only calls prctl(2), which is
    // async-signal-safe, allocates nothing and touches no lock.
    unsafe {
        builder.pre_exec(|| nix::sys::prctl::set_no_new_privs().map_err(std::io::Error::from));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn modes_parse_and_name() {
        for mode in [
            SandboxMode::Strict,
            SandboxMode::Workspace,
            SandboxMode::Off,
        ] {
            assert_eq!(mode.name().parse::<SandboxMode>().unwrap(), mode);
        }
        assert!("loose".parse::<SandboxMode>().is_err());
    }

    #[test]
    fn strict_arguments_have_private_tmp_and_no_network() {
        let confinement = Confinement {
            policy: ConfinePolicy::default(),
            writable: vec![PathBuf::from("/tmp/hone-sandbox-x")],
            readable: vec![PathBuf::from("/work/repo")],
        };
        let arguments = bwrap_arguments(
            "cargo test",
            Path::new("/tmp/hone-sandbox-x/r"),
            &confinement,
        );
        let text: Vec<String> = arguments
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let joined = text.join(" ");
        assert!(joined.contains("--unshare-net"), "{joined}");
        assert!(joined.contains("--unshare-pid"));
        assert!(joined.contains("--die-with-parent"));
        assert!(joined.contains("--ro-bind / /"));
        assert!(
            joined.contains("--tmpfs /tmp --ro-bind-try /work/repo /work/repo"),
            "{joined}"
        );
        let tmpfs = joined.find("--tmpfs /tmp").unwrap();
        let bind = joined.find("--bind-try /tmp/hone-sandbox-x").unwrap();
        assert!(
            tmpfs < bind,
            "the sandbox must be bound after the private /tmp"
        );
        assert!(joined.ends_with("--chdir /tmp/hone-sandbox-x/r sh -c cargo test"));
    }

    #[test]
    fn network_and_workspace_relax_only_what_they_name() {
        let confinement = Confinement {
            policy: ConfinePolicy {
                mode: SandboxMode::Workspace,
                network: true,
                writable: vec![PathBuf::from("/var/cache/pip")],
            },
            writable: Vec::new(),
            readable: Vec::new(),
        };
        let arguments = bwrap_arguments("true", Path::new("/"), &confinement);
        let joined: Vec<String> = arguments
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let joined = joined.join(" ");
        assert!(!joined.contains("--unshare-net"));
        assert!(joined.contains("--bind /tmp /tmp"));
        assert!(joined.contains("--bind-try /var/cache/pip /var/cache/pip"));
        assert!(joined.contains("--ro-bind / /"));
    }
}
