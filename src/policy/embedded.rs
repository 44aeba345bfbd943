//! The policies built into the binary, selectable with `--policy NAME`.

/// `(name, file name, text)` of each embedded policy; `KISS` is the default.
pub const EMBEDDED: &[(&str, &str, &str)] = &[
    (
        "KISS",
        "KISS-policy.toml",
        include_str!("../../policies/KISS-policy.toml"),
    ),
    (
        "net",
        "net-policy.toml",
        include_str!("../../policies/net-policy.toml"),
    ),
    (
        "dev",
        "dev-policy.toml",
        include_str!("../../policies/dev-policy.toml"),
    ),
];

/// The file name and text of the embedded policy `name` (case does not matter).
pub(crate) fn find(name: &str) -> Option<(&'static str, &'static str)> {
    EMBEDDED
        .iter()
        .find(|(n, file, _)| n.eq_ignore_ascii_case(name) || file.eq_ignore_ascii_case(name))
        .map(|(_, file, text)| (*file, *text))
}
