//! Diffs hone renders are accepted by the real `git apply --check` and produce the right files.

use hone_tools::diff::unified_diff;

use crate::support::{git, repo_with};

#[test]
fn git_apply_accepts_generated_diffs() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        (
            "mod.txt",
            Some("a\nb\nc\nd\ne\nf\ng\nh\n"),
            Some("a\nB\nc\nd\ne\nf\ng\nH\nI\n"),
        ),
        ("no_newline.txt", Some("one\ntwo"), Some("one\ntwo\n")),
        ("drop_newline.txt", Some("one\ntwo\n"), Some("one\n2")),
        ("created.txt", None, Some("new\nfile\n")),
        ("deleted.txt", Some("old\n"), None),
        ("crlf.txt", Some("x\r\ny\r\n"), Some("x\r\nz\r\n")),
    ];
    let existing: Vec<(&str, &str)> = cases
        .iter()
        .filter_map(|(path, old, _)| old.map(|old| (*path, old)))
        .collect();
    let repo = repo_with(&existing);
    let mut patch = String::new();
    for (path, old, new) in cases {
        patch.push_str(&unified_diff(path, path, *old, *new));
    }
    let patch_file = repo.path().join("../hone-test.patch");
    std::fs::write(&patch_file, &patch).unwrap();
    let patch_arg = patch_file.to_string_lossy().into_owned();
    git(repo.path(), &["apply", "--check", &patch_arg]);
    git(repo.path(), &["apply", &patch_arg]);
    for (path, _, new) in cases {
        let actual = std::fs::read_to_string(repo.path().join(path)).ok();
        assert_eq!(actual.as_deref(), *new, "{path} after git apply\n{patch}");
    }
    std::fs::remove_file(patch_file).unwrap();
}

#[test]
fn apply_report_diff_is_git_applicable() {
    let repo = repo_with(&[
        ("src/lib.rs", "fn a() -> u32 {\n    1\n}\n"),
        ("old.rs", "x\n"),
    ]);
    let text = "*** Begin Patch\n*** Update File: src/lib.rs\n@@\n fn a() -> u32 {\n-    1\n+    2\n }\n*** Update File: old.rs\n*** Move to: new.rs\n@@\n-x\n+y\n*** End Patch\n";
    let patch = hone_tools::parse_patch(text).unwrap();
    let report = hone_tools::plan_patch(repo.path(), &patch, &Default::default()).unwrap();
    assert!(report.is_success());
    let diff = report.diff();
    let diff_file = repo.path().join(".git/hone-test.diff");
    std::fs::write(&diff_file, &diff).unwrap();
    git(
        repo.path(),
        &["apply", "--index", diff_file.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("src/lib.rs")).unwrap(),
        "fn a() -> u32 {\n    2\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("new.rs")).unwrap(),
        "y\n"
    );
    assert!(!repo.path().join("old.rs").exists());
}
