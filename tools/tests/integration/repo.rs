//! Repository reading, sandboxes, verification and commits on real repositories in tempdirs.

use hone_tools::repo::{FileContent, FileKind, Repository, TreeSource};
use hone_tools::{Sandbox, SandboxOptions};

use crate::support::{git, repo_with, snapshot};

#[test]
fn lists_tracked_and_untracked_honouring_ignores() {
    let repo = repo_with(&[("src/a.rs", "a\n"), (".gitignore", "target/\n*.log\n")]);
    let root = repo.path();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("target/out"), "x").unwrap();
    std::fs::write(root.join("debug.log"), "x").unwrap();
    std::fs::write(root.join("new.rs"), "n\n").unwrap();
    std::fs::write(root.join("excluded.tmp"), "x").unwrap();
    std::fs::write(root.join(".git/info/exclude"), "*.tmp\n").unwrap();
    std::os::unix::fs::symlink("src/a.rs", root.join("link.rs")).unwrap();
    std::fs::create_dir_all(root.join("src/deep")).unwrap();
    let repo_handle = Repository::discover(&root.join("src/deep")).unwrap();
    let files = repo_handle.list_files().unwrap();
    let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(paths, [".gitignore", "link.rs", "new.rs", "src/a.rs"]);
    assert!(files
        .iter()
        .any(|file| file.path == "link.rs" && file.kind == FileKind::Symlink && !file.tracked));
    assert!(matches!(
        repo_handle
            .read_file("link.rs", &TreeSource::WorkTree, 1000)
            .unwrap(),
        FileContent::Symlink { .. }
    ));
}

#[test]
fn reads_head_index_and_worktree_and_reports_dirty_state() {
    let repo = repo_with(&[("f.txt", "head\n"), ("bin.dat", "a\0b")]);
    let root = repo.path();
    std::fs::write(root.join("f.txt"), "staged\n").unwrap();
    git(root, &["add", "f.txt"]);
    std::fs::write(root.join("f.txt"), "worktree\n").unwrap();
    std::fs::write(root.join("big.txt"), "x".repeat(5000)).unwrap();
    std::fs::write(root.join("latin1.txt"), [0xe9u8, b'\n']).unwrap();
    let repo_handle = Repository::discover(root).unwrap();
    let read = |source: TreeSource| repo_handle.read_file("f.txt", &source, 1 << 20).unwrap();
    assert_eq!(read(TreeSource::Head), FileContent::Text("head\n".into()));
    assert_eq!(
        read(TreeSource::Index),
        FileContent::Text("staged\n".into())
    );
    assert_eq!(
        read(TreeSource::WorkTree),
        FileContent::Text("worktree\n".into())
    );
    assert_eq!(
        repo_handle
            .read_file("bin.dat", &TreeSource::Head, 100)
            .unwrap(),
        FileContent::Binary
    );
    assert_eq!(
        repo_handle
            .read_file("big.txt", &TreeSource::WorkTree, 100)
            .unwrap(),
        FileContent::TooLarge { size: 5000 }
    );
    assert_eq!(
        repo_handle
            .read_file("latin1.txt", &TreeSource::WorkTree, 100)
            .unwrap(),
        FileContent::NonUtf8
    );
    let status = repo_handle.file_status("f.txt").unwrap();
    assert!(status.staged.is_some() && status.unstaged.is_some());
    assert!(repo_handle.file_status("bin.dat").unwrap().is_clean());
    assert!(repo_handle.file_status("big.txt").unwrap().untracked);
}

#[test]
fn empty_repository_and_linked_worktree() {
    let empty = repo_with(&[]);
    std::fs::write(empty.path().join("a.txt"), "a\n").unwrap();
    let repo = Repository::discover(empty.path()).unwrap();
    assert_eq!(repo.head_commit().unwrap(), None);
    assert_eq!(repo.list_files().unwrap().len(), 1);
    assert_eq!(
        repo.read_file("a.txt", &TreeSource::Head, 100).unwrap(),
        FileContent::Missing
    );
    let sandbox = Sandbox::create(&repo, &TreeSource::Head, &SandboxOptions::default()).unwrap();
    assert!(snapshot(sandbox.root()).is_empty());

    let main = repo_with(&[("m.txt", "m\n")]);
    let linked = tempfile::tempdir().unwrap();
    let linked_path = linked.path().join("wt");
    git(
        main.path(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            linked_path.to_str().unwrap(),
        ],
    );
    std::fs::write(linked_path.join("m.txt"), "changed\n").unwrap();
    let repo = Repository::discover(&linked_path).unwrap();
    assert_eq!(repo.root(), linked_path.canonicalize().unwrap());
    assert_eq!(
        repo.read_file("m.txt", &TreeSource::Head, 100).unwrap(),
        FileContent::Text("m\n".into())
    );
    assert!(repo.file_status("m.txt").unwrap().unstaged.is_some());
}

#[test]
fn sandboxes_materialise_worktree_index_and_revisions() {
    let repo = repo_with(&[
        ("a.txt", "one\n"),
        ("run.sh", "#!/bin/sh\n"),
        ("gone.txt", "g\n"),
    ]);
    let root = repo.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    git(root, &["add", "run.sh"]);
    git(root, &["commit", "-q", "-m", "exec"]);
    let first = git(root, &["rev-parse", "HEAD~1"]).trim().to_string();
    std::fs::write(root.join("a.txt"), "staged\n").unwrap();
    git(root, &["add", "a.txt"]);
    std::fs::write(root.join("a.txt"), "unstaged\n").unwrap();
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    std::fs::write(root.join("untracked.txt"), "u\n").unwrap();
    let repo_handle = Repository::discover(root).unwrap();
    let options = SandboxOptions::default();

    let work = Sandbox::create(&repo_handle, &TreeSource::WorkTree, &options).unwrap();
    let files = snapshot(work.root());
    assert_eq!(files.get("a.txt").unwrap(), b"unstaged\n");
    assert!(files.contains_key("untracked.txt") && !files.contains_key("gone.txt"));
    assert!(
        std::fs::metadata(work.root().join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o100
            != 0
    );

    let index = Sandbox::create(&repo_handle, &TreeSource::Index, &options).unwrap();
    let files = snapshot(index.root());
    assert_eq!(files.get("a.txt").unwrap(), b"staged\n");
    assert!(files.contains_key("gone.txt") && !files.contains_key("untracked.txt"));
    assert!(
        std::fs::metadata(index.root().join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o100
            != 0
    );

    let old = Sandbox::create(&repo_handle, &TreeSource::Revision(first), &options).unwrap();
    let files = snapshot(old.root());
    assert_eq!(files.get("a.txt").unwrap(), b"one\n");
    let kept = old.root().to_path_buf();
    drop(old);
    assert!(!kept.exists(), "the sandbox folder is removed on drop");
}

#[test]
fn verify_then_commit_only_the_patch() {
    let repo = repo_with(&[
        ("calc.py", "def add(a, b):\n    return a - b\n"),
        ("other.txt", "o\n"),
    ]);
    let root = repo.path();
    std::fs::write(root.join("other.txt"), "staged other\n").unwrap();
    git(root, &["add", "other.txt"]);
    let repo_handle = Repository::discover(root).unwrap();
    let patch = hone_tools::parse_patch(
        "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n",
    )
    .unwrap();
    let mut options = hone_tools::VerifyOptions::new(&repo_handle);
    options.test = hone_tools::TestChoice::Command("grep -q 'a + b' calc.py".into());
    let verification = hone_tools::verify_patch(&repo_handle, &patch, &options).unwrap();
    assert_eq!(verification.verdict, hone_tools::Verdict::Verified);
    assert!(verification.diff.contains("+    return a + b"));
    assert_eq!(
        std::fs::read_to_string(root.join("calc.py")).unwrap(),
        "def add(a, b):\n    return a - b\n",
        "verify never touches the tree"
    );
    let (report, commit) =
        hone_tools::commit_patch(&repo_handle, &patch, "fix add", &Default::default()).unwrap();
    assert!(report.written && commit.is_some());
    let shown = git(root, &["show", "--stat", "--format=%s", "HEAD"]);
    assert!(
        shown.contains("fix add") && shown.contains("calc.py") && !shown.contains("other.txt"),
        "{shown}"
    );
    let status = git(root, &["status", "--porcelain"]);
    assert_eq!(
        status.trim(),
        "M  other.txt",
        "only the unrelated staged change remains"
    );
}

#[test]
fn commit_is_refused_on_a_dirty_target_and_during_a_merge() {
    let repo = repo_with(&[("calc.py", "def add(a, b):\n    return a - b\n")]);
    let root = repo.path();
    let patch = hone_tools::parse_patch(
        "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n",
    )
    .unwrap();
    std::fs::write(
        root.join("calc.py"),
        "def add(a, b):\n    return a - b  # mine\n",
    )
    .unwrap();
    let handle = Repository::discover(root).unwrap();
    let error =
        hone_tools::commit_patch(&handle, &patch, "fix add", &Default::default()).unwrap_err();
    assert!(
        matches!(&error, hone_tools::Error::UncommittedChanges { path } if path == "calc.py"),
        "{error}"
    );

    git(root, &["checkout", "--", "calc.py"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    std::fs::write(root.join(".git/MERGE_HEAD"), head).unwrap();
    let error =
        hone_tools::commit_patch(&handle, &patch, "fix add", &Default::default()).unwrap_err();
    assert!(
        matches!(
            error,
            hone_tools::Error::OperationInProgress {
                operation: "a merge",
                abort: "git merge --abort"
            }
        ),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("calc.py")).unwrap(),
        "def add(a, b):\n    return a - b\n",
        "nothing was written"
    );
}

#[test]
fn test_tree_runs_the_command_on_the_chosen_state_only() {
    let repo = repo_with(&[("calc.py", "def add(a, b):\n    return a - b\n")]);
    let root = repo.path();
    std::fs::write(root.join("calc.py"), "def add(a, b):\n    return a + b\n").unwrap();
    git(root, &["add", "calc.py"]);
    std::fs::write(root.join("calc.py"), "broken\n").unwrap();
    let handle = Repository::discover(root).unwrap();
    let options = SandboxOptions::for_repository(&handle);
    let test = hone_tools::TestChoice::Command("grep -q 'a + b' calc.py".into());
    let timeout = std::time::Duration::from_secs(60);
    let staged =
        hone_tools::verify::test_tree(&handle, &TreeSource::Index, &options, &test, timeout)
            .unwrap()
            .unwrap();
    assert!(staged.report.passed, "{}", staged.report.output);
    assert!(!staged.sandbox_root.exists(), "the sandbox is gone");
    let worktree =
        hone_tools::verify::test_tree(&handle, &TreeSource::WorkTree, &options, &test, timeout)
            .unwrap()
            .unwrap();
    assert!(!worktree.report.passed);
    let nothing = hone_tools::verify::test_tree(
        &handle,
        &TreeSource::WorkTree,
        &options,
        &hone_tools::TestChoice::Detect,
        timeout,
    )
    .unwrap();
    assert!(nothing.is_none(), "no command detected: nothing ran");
}

#[test]
fn refuses_escaping_symlinks_symlinked_files_and_binaries() {
    let outside = tempfile::tempdir().unwrap();
    let repo = repo_with(&[("a.txt", "a\n"), ("data.bin", "x\0y\n")]);
    let root = repo.path();
    std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("alias.txt")).unwrap();
    let text = "escape/evil.txt\n<<<<<<< SEARCH\n=======\nevil\n>>>>>>> REPLACE\n\
                alias.txt\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n\
                data.bin\n<<<<<<< SEARCH\nx\n=======\nz\n>>>>>>> REPLACE\n\
                /etc/passwd\n<<<<<<< SEARCH\nroot\n=======\nx\n>>>>>>> REPLACE\n";
    let patch = hone_tools::parse_patch(text).unwrap();
    let before = snapshot(root);
    let report = hone_tools::apply_patch(root, &patch, &Default::default()).unwrap();
    let reasons: Vec<String> = report
        .failures()
        .map(|(_, failure)| {
            serde_json::to_value(&failure.reason).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        ["unsafe_path", "not_text", "not_text", "unsafe_path"]
    );
    assert_eq!(snapshot(root), before);
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
}

#[test]
fn index_sandbox_in_a_linked_worktree() {
    let main = repo_with(&[("m.txt", "m\n")]);
    let linked = tempfile::tempdir().unwrap();
    let linked_path = linked.path().join("wt");
    git(
        main.path(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            linked_path.to_str().unwrap(),
        ],
    );
    std::fs::write(linked_path.join("m.txt"), "staged in worktree\n").unwrap();
    git(&linked_path, &["add", "m.txt"]);
    std::fs::write(linked_path.join("m.txt"), "unstaged\n").unwrap();
    let repo = Repository::discover(&linked_path).unwrap();
    let sandbox = Sandbox::create(&repo, &TreeSource::Index, &SandboxOptions::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.root().join("m.txt")).unwrap(),
        "staged in worktree\n"
    );
}
