//! Seccomp filters for the command: the embedded profiles (compiled to BPF by `build.rs`),
//! profile files and policy filters (compiled with seccompiler when they are read), and the
//! socket family restriction.

pub(crate) mod profile;
pub(crate) mod syscalls;

use std::path::Path;

use crate::error::Error;
use crate::policy::toml;
use profile::{Action, Groups, Instruction, Profile, Rule};
use syscalls::Arch;

/// A profile built into the binary.
pub(crate) struct EmbeddedProfile {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// How many system calls its rules name on this architecture.
    pub(crate) syscalls: usize,
    /// The program for this architecture, as `build.rs` compiled it.
    pub(crate) bpf: &'static [u8],
    /// Its text, for combining it with other rules at run time.
    pub(crate) text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/seccomp_profiles.rs"));

const GROUPS: &str = include_str!("../../policies/seccomp/groups.toml");

/// The names `--seccomp` takes besides a file: the embedded profiles and `unconfined`.
pub fn profile_names() -> Vec<(&'static str, &'static str)> {
    let mut names: Vec<(&str, &str)> = EMBEDDED_PROFILES
        .iter()
        .map(|p| (p.name, p.description))
        .collect();
    names.push(("unconfined", "no filter at all (no_new_privs is still set)"));
    names
}

/// The named groups of system calls (`@mount`, ...), with their members.
pub fn groups() -> Vec<(String, Vec<String>)> {
    load_groups()
        .map(|g| {
            g.0.into_iter()
                .map(|(name, m)| (name, m.into_iter().map(|n| n.text).collect()))
                .collect()
        })
        .unwrap_or_default()
}

fn load_groups() -> Result<Groups, Error> {
    let table =
        toml::parse(GROUPS).map_err(|e| Error::Setup(format!("groups.toml: {}", e.message)))?;
    profile::read_groups(&table).map_err(|e| Error::Setup(format!("groups.toml: {}", e.message)))
}

/// Where the filter's rules come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// No filter.
    Unconfined,
    /// An embedded profile, by name.
    Embedded(&'static str),
    /// A profile read from a file or a policy: its name for the log, and its rules.
    Profile { name: String, profile: Profile },
    /// `hakoniwa trace`: every system call goes to the supervisor, which counts it.
    Trace,
}

/// What the command's filter is made of: a base and, optionally, the only socket address
/// families `socket` and `socketpair` may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeccompSpec {
    pub(crate) base: Base,
    pub(crate) socket_families: Option<Vec<u32>>,
}

impl Default for SeccompSpec {
    fn default() -> SeccompSpec {
        SeccompSpec {
            base: Base::Embedded("default"),
            socket_families: None,
        }
    }
}

/// A filter ready to load, and what the log says of it.
pub(crate) struct Filter {
    pub(crate) program: Vec<Instruction>,
    pub(crate) description: String,
}

/// Socket address families by name, for `socket_families`.
const FAMILIES: &[(&str, u32)] = &[
    ("unix", 1),
    ("local", 1),
    ("inet", 2),
    ("ax25", 3),
    ("ipx", 4),
    ("appletalk", 5),
    ("inet6", 10),
    ("key", 15),
    ("netlink", 16),
    ("packet", 17),
    ("rds", 21),
    ("llc", 26),
    ("can", 29),
    ("tipc", 30),
    ("bluetooth", 31),
    ("alg", 38),
    ("vsock", 40),
    ("xdp", 44),
    ("mctp", 45),
];

/// The number of socket family `name` (`unix`, `inet`, `inet6`, `netlink`, ...).
pub(crate) fn socket_family(name: &str) -> Option<u32> {
    FAMILIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, f)| *f)
}

/// The names `socket_family` knows.
pub(crate) fn socket_family_names() -> String {
    FAMILIES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl SeccompSpec {
    /// `name` is an embedded profile or `unconfined`.
    pub(crate) fn named(name: &str) -> Option<Base> {
        if name == "unconfined" {
            return Some(Base::Unconfined);
        }
        EMBEDDED_PROFILES
            .iter()
            .find(|p| p.name == name)
            .map(|p| Base::Embedded(p.name))
    }

    /// Compiles the filter; `None` for unconfined without a socket restriction.
    pub(crate) fn build(&self) -> Result<Option<Filter>, Error> {
        let embedded = match &self.base {
            Base::Embedded(name) => EMBEDDED_PROFILES.iter().find(|p| p.name == *name),
            _ => None,
        };
        // The common case: an embedded profile as compiled at build time, loaded as is.
        if let (Some(embedded), None) = (embedded, &self.socket_families)
            && !embedded.bpf.is_empty()
        {
            let program = embedded
                .bpf
                .chunks_exact(Instruction::SIZE)
                .filter_map(|c| c.try_into().ok().map(Instruction::from_bytes))
                .collect();
            let description = format!("{} ({} rules, built in)", embedded.name, embedded.syscalls);
            return Ok(Some(Filter {
                program,
                description,
            }));
        }
        let (name, mut profile) = match (&self.base, embedded) {
            (Base::Trace, _) => return Ok(None),
            (Base::Unconfined, _) if self.socket_families.is_none() => return Ok(None),
            (Base::Unconfined, _) => ("unconfined".to_string(), Profile::allow_all()),
            (Base::Embedded(name), Some(embedded)) => {
                let table = toml::parse(embedded.text).map_err(|e| Error::Setup(e.message))?;
                let profile = profile::read_profile(&table).map_err(|e| Error::Setup(e.message))?;
                (name.to_string(), profile)
            }
            (Base::Embedded(name), None) => {
                return Err(Error::InvalidInput(format!(
                    "no seccomp profile named {name:?}"
                )));
            }
            (Base::Profile { name, profile }, _) => (name.clone(), profile.clone()),
        };
        let mut description = name;
        if let Some(families) = &self.socket_families {
            profile.rules.insert(0, socket_rule(families));
            description.push_str(" + socket families");
        }
        let arch = Arch::native().ok_or_else(|| {
            Error::Setup("seccomp filters are not supported on this architecture".into())
        })?;
        let program = profile::compile(&profile, &load_groups()?, arch)
            .map_err(|e| Error::Setup(format!("seccomp: {}", e.message)))?;
        let description = format!("{description} ({} rules)", program.syscalls);
        Ok(Some(Filter {
            program: program.instructions,
            description,
        }))
    }
}

/// `socket` and `socketpair` with a family not in `families` fail with EAFNOSUPPORT.
fn socket_rule(families: &[u32]) -> Rule {
    let allowed: Vec<String> = families.iter().map(|f| format!("arg0.lo != {f}")).collect();
    let when = if allowed.is_empty() {
        Vec::new()
    } else {
        vec![allowed.join(" && ")]
    };
    Rule::new(
        Action::Errno(libc::EAFNOSUPPORT as u32),
        &["socket", "socketpair"],
        &when,
    )
}

/// Reads a profile file (`--seccomp FILE`); errors name the file, line and column.
pub(crate) fn profile_file(path: &Path) -> Result<Base, Error> {
    let name = path.to_string_lossy().into_owned();
    let text = crate::policy::read_text(path, "seccomp profile")?;
    let at = |at: usize, message: String| {
        let (line, column) = toml::line_col(&text, at);
        Error::Policy {
            file: name.clone(),
            line,
            column,
            message,
        }
    };
    let table = toml::parse(&text).map_err(|e| at(e.at, e.message))?;
    let profile = profile::read_profile(&table).map_err(|e| at(e.at, e.message))?;
    // Unknown system calls and groups are found now, with their positions.
    let arch = Arch::native().ok_or_else(|| {
        Error::Setup("seccomp filters are not supported on this architecture".into())
    })?;
    profile::compile(&profile, &load_groups()?, arch).map_err(|e| at(e.at, e.message))?;
    Ok(Base::Profile { name, profile })
}

/// Checks that every name in `profile` resolves on this architecture; `Err((offset, why))`.
pub(crate) fn check(profile: &Profile) -> Result<(), (usize, String)> {
    let arch = Arch::native().ok_or((
        0,
        "seccomp filters are not supported on this architecture".to_string(),
    ))?;
    let groups = load_groups().map_err(|e| (0, e.to_string()))?;
    profile::compile(profile, &groups, arch)
        .map(drop)
        .map_err(|e| (e.at, e.message))
}
