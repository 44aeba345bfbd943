//! Differential test of the policy TOML reader: every document under `tests/toml/` is read
//! by ours and judged against Python's `tomllib` by `tests/toml/differential.py`, which
//! says what each folder means.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const FOLDERS: [&str; 4] = ["valid", "invalid", "unsupported", "out-of-range"];

/// The corpus's `*.toml` files, sorted.
fn corpus(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in FOLDERS {
        for entry in std::fs::read_dir(root.join(folder)).expect("read a corpus folder") {
            let path = entry.expect("read a corpus entry").path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn reader_matches_tomllib() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toml");
    let files = corpus(&root);
    let count = files.len();
    assert!(count >= 160, "only {count} documents in the corpus");

    let mut manifest = String::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read a corpus document");
        let (ours, error) = match hakoniwa::__private::toml_to_json(&bytes) {
            Ok(json) => (json, "null".to_string()),
            Err(message) => (
                "null".to_string(),
                hakoniwa::__private::json_string(&message),
            ),
        };
        let file = hakoniwa::__private::json_string(path.to_str().expect("a UTF-8 path"));
        manifest.push_str(&format!(
            "{{\"file\": {file}, \"ours\": {ours}, \"error\": {error}}}\n"
        ));
    }

    let mut child = Command::new("python3")
        .arg(root.join("differential.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (3.11 or later, for tomllib)");
    // The script reads all of its input before it prints anything. A write error (it died
    // early) shows up in its exit status and output below.
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(manifest.as_bytes());
    drop(stdin);
    let output = child.wait_with_output().expect("wait for differential.py");
    assert!(
        output.status.success(),
        "differential.py found failures ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
