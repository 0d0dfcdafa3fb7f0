//! Property tests: parsers never panic; applying the diff of (a, b) to a gives b.

use hone_tools::diff::unified_diff;
use hone_tools::edits::{apply_patch, parse_patch, parse_patch_as, ApplyOptions, EditFormat};
use proptest::prelude::*;

fn text_from(lines: Vec<String>, final_newline: bool) -> String {
    let mut text = lines.join("\n");
    if final_newline && !lines.is_empty() {
        text.push('\n');
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(text in "(?s).{0,400}") {
        let _ = parse_patch(&text);
        for format in [EditFormat::SearchReplace, EditFormat::UnifiedDiff, EditFormat::CodexPatch, EditFormat::WholeFile] {
            let _ = parse_patch_as(&text, format);
        }
    }

    #[test]
    fn parsers_never_panic_on_patch_like_lines(lines in proptest::collection::vec(
        prop_oneof![
            Just("<<<<<<< SEARCH".to_string()), Just("=======".to_string()), Just(">>>>>>> REPLACE".to_string()),
            Just("--- a/x".to_string()), Just("+++ b/x".to_string()), Just("@@ -1,2 +1,2 @@".to_string()),
            Just("@@".to_string()), Just("*** Begin Patch".to_string()), Just("*** Update File: x".to_string()),
            Just("*** End of File".to_string()), Just("```".to_string()), Just("\\ No newline at end of file".to_string()),
            "[ +-]?[a-z ]{0,8}",
        ], 0..30)) {
        let text = lines.join("\n");
        let _ = parse_patch(&text);
    }

    #[test]
    fn applying_the_diff_of_a_and_b_to_a_gives_b(
        a in proptest::collection::vec("[abc]{0,3}", 0..25),
        b in proptest::collection::vec("[abc]{0,3}", 0..25),
        a_final in any::<bool>(),
        b_final in any::<bool>(),
    ) {
        let a = text_from(a, a_final);
        let b = text_from(b, b_final);
        prop_assume!(!a.is_empty());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), &a).unwrap();
        let diff = unified_diff("f.txt", "f.txt", Some(&a), Some(&b));
        if diff.is_empty() {
            prop_assert_eq!(&a, &b);
            return Ok(());
        }
        let patch = parse_patch(&diff).unwrap();
        let report = apply_patch(dir.path(), &patch, &ApplyOptions::default()).unwrap();
        prop_assert!(report.is_success(), "{}\n{}", diff, hone_tools::render_for_people(&report));
        let result = std::fs::read_to_string(dir.path().join("f.txt")).unwrap();
        prop_assert_eq!(result, b, "diff:\n{}", diff);
    }
}
