//! The crate's documentation is the README's "Library" section, and the seed's example in it
//! is `examples/shell.rs`, which `library_example.rs` builds and runs.

const README: &str = include_str!("../README.md");
const LIB: &str = include_str!("../src/lib.rs");
const EXAMPLE: &str = include_str!("../examples/shell.rs");

/// The README's "## Library" section, without its heading.
fn readme_section() -> &'static str {
    let start = README.find("\n## Library\n").expect("a Library section") + "\n## Library\n".len();
    let rest = &README[start..];
    let end = rest.find("\n## ").expect("a section after Library");
    rest[..end].trim_matches('\n')
}

#[test]
fn crate_doc_is_the_readme_library_section() {
    let doc: Vec<&str> = LIB
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect();
    assert_eq!(
        doc[0],
        "Hakoniwa: process isolation for Linux, as a library."
    );
    assert_eq!(doc[1], "");
    let readme: Vec<&str> = readme_section().lines().collect();
    assert_eq!(
        doc[2..],
        readme[..],
        "src/lib.rs's crate doc differs from the README"
    );
}

#[test]
fn readme_shows_the_example_as_it_is() {
    let block = readme_section()
        .split("```rust,no_run\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the seed's example in the README");
    let code = &EXAMPLE[EXAMPLE.find("use hakoniwa").expect("the example's code")..];
    assert_eq!(block.trim_end(), code.trim_end());
}
