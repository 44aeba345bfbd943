//! Seccomp profiles: rules read from TOML, compiled to BPF with seccompiler.
//!
//! Shared by `build.rs`, which compiles the embedded profiles for every architecture, and the
//! library, which compiles profile files and policy filters when they are read. A profile:
//!
//! ```toml
//! description = "what it is for"
//! default_action = "allow"          # for system calls no rule matches
//! [[rules]]
//! action = "errno:EPERM"            # allow, log, kill_process, kill_thread, trap, errno:NAME|N
//! syscalls = ["mount", "@keyring"]  # names, and @groups from groups.toml
//! when = ["arg0 & 0x10000000"]      # optional: matches if any entry holds
//! ```
//!
//! A `when` entry is clauses joined by `&&`, each `argN OP VALUE` (`==`, `!=`, `<`, `<=`,
//! `>`, `>=`) or `argN & MASK` (every bit of MASK set) or `argN & MASK == VALUE`; `argN.lo`
//! compares the low 32 bits only, as the kernel reads an `int` argument.
//!
//! Rules are tried in order and the first that matches decides. Each rule is compiled by
//! seccompiler into its own program; the programs are chained (a rule that does not match
//! falls through to the next) behind one architecture check and a binary search on the
//! system call number, so the kernel loads one filter, and a system call that no condition
//! concerns is decided by the search alone.

use std::collections::{BTreeMap, BTreeSet};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::super::policy::toml::{Entry, Table, TextError, Value, fail};
use super::syscalls::{self, Arch};

/// What a filter does with a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Log,
    KillProcess,
    KillThread,
    Trap,
    Errno(u32),
}

/// Error numbers a profile may name.
const ERRNOS: &[(&str, u32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EINVAL", 22),
    ("ENOSYS", 38),
    ("EAFNOSUPPORT", 97),
    ("EPROTONOSUPPORT", 93),
    ("ENOTSUP", 95),
];

impl Action {
    /// `allow`, `log`, `kill_process`, `kill_thread`, `trap`, `errno:EPERM` or `errno:1`.
    pub(crate) fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "allow" => Action::Allow,
            "log" => Action::Log,
            "kill_process" | "kill" => Action::KillProcess,
            "kill_thread" => Action::KillThread,
            "trap" => Action::Trap,
            _ => {
                let errno = text.strip_prefix("errno:")?;
                let number = match ERRNOS.iter().find(|(name, _)| *name == errno) {
                    Some((_, n)) => *n,
                    None => errno.parse().ok().filter(|n| (1..4096).contains(n))?,
                };
                Action::Errno(number)
            }
        })
    }

    fn seccompiler(self) -> SeccompAction {
        match self {
            Action::Allow => SeccompAction::Allow,
            Action::Log => SeccompAction::Log,
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno(n) => SeccompAction::Errno(n),
        }
    }
}

/// One clause of a `when` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    arg: u8,
    low32: bool,
    op: SeccompCmpOp,
    value: u64,
}

/// A system call name or `@group`, and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) text: String,
    pub(crate) at: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) action: Action,
    pub(crate) syscalls: Vec<Name>,
    /// Alternatives, each a conjunction; empty means always.
    pub(crate) when: Vec<Vec<Condition>>,
    pub(crate) at: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) description: String,
    pub(crate) default: Action,
    pub(crate) rules: Vec<Rule>,
}

impl Profile {
    /// No rules; every system call allowed.
    pub(crate) fn allow_all() -> Profile {
        Profile {
            description: String::new(),
            default: Action::Allow,
            rules: Vec::new(),
        }
    }
}

impl Rule {
    /// A rule made in code: `when` entries in the profile syntax, which must be valid.
    pub(crate) fn new(action: Action, syscalls: &[&str], when: &[String]) -> Rule {
        Rule {
            action,
            syscalls: syscalls
                .iter()
                .map(|s| Name {
                    text: s.to_string(),
                    at: 0,
                })
                .collect(),
            when: when.iter().filter_map(|w| parse_when(w).ok()).collect(),
            at: 0,
        }
    }
}

/// Named groups of system calls (`groups.toml`), usable as `@name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Groups(pub(crate) Vec<(String, Vec<Name>)>);

type Result<T> = std::result::Result<T, TextError>;

/// One BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Instruction {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

impl Instruction {
    pub(crate) const SIZE: usize = 8;

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "build.rs writes the embedded programs")
    )]
    pub(crate) fn to_bytes(self) -> [u8; Instruction::SIZE] {
        let mut out = [0u8; Instruction::SIZE];
        out[..2].copy_from_slice(&self.code.to_le_bytes());
        out[2] = self.jt;
        out[3] = self.jf;
        out[4..].copy_from_slice(&self.k.to_le_bytes());
        out
    }

    pub(crate) fn from_bytes(bytes: [u8; Instruction::SIZE]) -> Instruction {
        Instruction {
            code: u16::from_le_bytes([bytes[0], bytes[1]]),
            jt: bytes[2],
            jf: bytes[3],
            k: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// A compiled filter and how many system calls its rules name.
pub(crate) struct Program {
    pub(crate) instructions: Vec<Instruction>,
    pub(crate) syscalls: usize,
}

// The classic BPF opcodes (class | size/op | mode) and seccomp constants the chaining needs.
/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `seccomp_data`.
const LD_ABS_W: u16 = 0x20;
/// `BPF_JMP | BPF_JA`
const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`
const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`
const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`
const RET_K: u16 = 0x06;
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARG0_LOW: u32 = 16;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
/// ENOSYS, the same on every architecture Linux has (the build script has no libc).
const ENOSYS: u32 = 38;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// x32 system calls carry this bit and pass the x86_64 architecture check.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The kernel's limit on a filter's length.
const MAX_INSTRUCTIONS: usize = 4096;
/// What a rule's program returns when it does not match: replaced by a jump to the next
/// rule's program. A trace action, which no profile can ask for.
const NO_MATCH: SeccompAction = SeccompAction::Trace(0xfffe);

fn string(entry: &Entry) -> Result<&str> {
    match &entry.item.value {
        Value::String(s) => Ok(s),
        other => fail(
            entry.item.at,
            format!(
                "expected a string for {:?}, found {}",
                entry.key,
                other.kind()
            ),
        ),
    }
}

fn names(entry: &Entry) -> Result<Vec<Name>> {
    let Value::Array(items) = &entry.item.value else {
        return fail(
            entry.item.at,
            format!("expected an array of strings for {:?}", entry.key),
        );
    };
    items
        .iter()
        .map(|item| match &item.value {
            Value::String(s) => Ok(Name {
                text: s.clone(),
                at: item.at,
            }),
            other => fail(
                item.at,
                format!(
                    "expected a string in {:?}, found {}",
                    entry.key,
                    other.kind()
                ),
            ),
        })
        .collect()
}

fn unknown_key(entry: &Entry, known: &[&str], within: &str) -> TextError {
    TextError {
        at: entry.key_at,
        message: format!(
            "unknown key {:?}{within} (expected one of {})",
            entry.key,
            known.join(", ")
        ),
    }
}

/// Reads a profile document.
pub(crate) fn read_profile(table: &Table) -> Result<Profile> {
    let mut profile = Profile {
        description: String::new(),
        default: Action::Allow,
        rules: Vec::new(),
    };
    for entry in table.entries() {
        match entry.key.as_str() {
            "description" => profile.description = string(entry)?.to_string(),
            "default_action" => profile.default = action(entry)?,
            "rules" => {
                let Value::Array(items) = &entry.item.value else {
                    return fail(entry.item.at, "expected [[rules]] tables");
                };
                for item in items {
                    let Value::Table(rule) = &item.value else {
                        return fail(item.at, "expected a [[rules]] table");
                    };
                    profile.rules.push(read_rule(rule, item.at)?);
                }
            }
            _ => {
                return Err(unknown_key(
                    entry,
                    &["description", "default_action", "rules"],
                    "",
                ));
            }
        }
    }
    Ok(profile)
}

fn action(entry: &Entry) -> Result<Action> {
    let text = string(entry)?;
    Action::parse(text).ok_or_else(|| TextError {
        at: entry.item.at,
        message: format!(
            "unknown action {text:?} (expected allow, log, kill_process, kill_thread, trap or errno:NAME)"
        ),
    })
}

fn read_rule(table: &Table, at: usize) -> Result<Rule> {
    let mut rule = Rule {
        action: Action::KillProcess,
        syscalls: Vec::new(),
        when: Vec::new(),
        at,
    };
    let mut has_action = false;
    for entry in table.entries() {
        match entry.key.as_str() {
            "action" => {
                rule.action = action(entry)?;
                has_action = true;
            }
            "syscalls" => rule.syscalls = names(entry)?,
            "when" => {
                for alternative in names(entry)? {
                    let clauses = parse_when(&alternative.text).map_err(|why| TextError {
                        at: alternative.at,
                        message: why,
                    })?;
                    rule.when.push(clauses);
                }
            }
            _ => {
                return Err(unknown_key(
                    entry,
                    &["action", "syscalls", "when"],
                    " in a rule",
                ));
            }
        }
    }
    if !has_action {
        return fail(at, "a rule needs \"action\"");
    }
    Ok(rule)
}

/// `arg0 & 0x10 && arg1.lo != 5`: one alternative of a `when`.
fn parse_when(text: &str) -> std::result::Result<Vec<Condition>, String> {
    text.split("&&")
        .map(|clause| parse_clause(clause.trim()))
        .collect()
}

fn parse_clause(clause: &str) -> std::result::Result<Condition, String> {
    let bad = || {
        format!(
            "cannot read condition {clause:?} (expected e.g. \"arg0 == 5\", \"arg1.lo != 0x10\" or \"arg2 & 0x4\")"
        )
    };
    let words: Vec<&str> = clause.split_whitespace().collect();
    let operand = words.first().ok_or_else(bad)?;
    let (index, low32) = match operand.strip_suffix(".lo") {
        Some(arg) => (arg, true),
        None => (*operand, false),
    };
    let arg: u8 = index
        .strip_prefix("arg")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n < 6)
        .ok_or_else(bad)?;
    let number = |word: &str| -> std::result::Result<u64, String> {
        match word.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => word.parse(),
        }
        .map_err(|_| bad())
    };
    let (op, value) = match words[1..] {
        ["&", mask] => {
            let mask = number(mask)?;
            (SeccompCmpOp::MaskedEq(mask), mask)
        }
        ["&", mask, "==", value] => (SeccompCmpOp::MaskedEq(number(mask)?), number(value)?),
        [op, value] => {
            let op = match op {
                "==" => SeccompCmpOp::Eq,
                "!=" => SeccompCmpOp::Ne,
                "<" => SeccompCmpOp::Lt,
                "<=" => SeccompCmpOp::Le,
                ">" => SeccompCmpOp::Gt,
                ">=" => SeccompCmpOp::Ge,
                _ => return Err(bad()),
            };
            (op, number(value)?)
        }
        _ => return Err(bad()),
    };
    if low32 && value > u64::from(u32::MAX) {
        return Err(format!(
            "{clause:?} compares the low 32 bits with a larger value"
        ));
    }
    Ok(Condition {
        arg,
        low32,
        op,
        value,
    })
}

/// Reads `groups.toml`: each key a group, each value its system calls and @groups.
pub(crate) fn read_groups(table: &Table) -> Result<Groups> {
    let mut groups = Vec::new();
    for entry in table.entries() {
        groups.push((entry.key.clone(), names(entry)?));
    }
    let groups = Groups(groups);
    // Every member must resolve somewhere, and no group may contain itself.
    for (_, members) in &groups.0 {
        for arch in Arch::ALL {
            groups.expand(members, arch, &mut BTreeSet::new(), 0)?;
        }
    }
    Ok(groups)
}

impl Groups {
    fn find(&self, name: &str) -> Option<&[Name]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, members)| members.as_slice())
    }

    /// The numbers of `names` on `arch`: a name that exists only on other architectures is
    /// skipped, an unknown one is an error.
    pub(crate) fn expand(
        &self,
        names: &[Name],
        arch: Arch,
        out: &mut BTreeSet<u32>,
        depth: usize,
    ) -> Result<()> {
        for name in names {
            if let Some(group) = name.text.strip_prefix('@') {
                let members = self.find(group).ok_or_else(|| TextError {
                    at: name.at,
                    message: format!(
                        "unknown group {:?} (see 'hakoniwa seccomp groups')",
                        name.text
                    ),
                })?;
                if depth > 8 {
                    return fail(name.at, format!("group {:?} contains itself", name.text));
                }
                self.expand(members, arch, out, depth + 1)?;
            } else if let Some(number) = arch.number(&name.text) {
                out.insert(number);
            } else if !syscalls::is_known(&name.text) {
                return fail(name.at, format!("unknown system call {:?}", name.text));
            }
        }
        Ok(())
    }
}

fn target(arch: Arch) -> TargetArch {
    match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    }
}

fn instruction(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
    Instruction { code, jt, jf, k }
}

/// The architecture check every filter starts with; on x86_64 it also kills x32 system
/// calls, which carry the x86_64 architecture but other numbers, and answers number -1
/// with ENOSYS, as the kernel would: a ptracer (strace, gdb) sets it to skip a call. An
/// array and its length, so that the tracing filter can be built after clone3, without
/// allocating.
fn prologue(arch: Arch) -> ([Instruction; 8], usize) {
    let audit = match arch {
        Arch::X86_64 => AUDIT_ARCH_X86_64,
        Arch::Aarch64 => AUDIT_ARCH_AARCH64,
    };
    let program = [
        instruction(LD_ABS_W, 0, 0, DATA_ARCH),
        instruction(JMP_JEQ_K, 1, 0, audit),
        instruction(RET_K, 0, 0, RET_KILL_PROCESS),
        instruction(LD_ABS_W, 0, 0, DATA_NR),
        instruction(JMP_JGE_K, 0, 3, X32_SYSCALL_BIT),
        instruction(JMP_JEQ_K, 1, 0, u32::MAX),
        instruction(RET_K, 0, 0, RET_KILL_PROCESS),
        instruction(RET_K, 0, 0, RET_ERRNO | ENOSYS),
    ];
    let len = if arch == Arch::X86_64 { 8 } else { 3 };
    (program, len)
}

/// The length of [`tracing_filter`]'s program.
pub(crate) const TRACING_FILTER_LEN: usize = 14;

/// A filter that hands every system call to a supervisor as a user notification, but for
/// `sendmsg` on descriptor `socket`, with which the listener itself is handed over.
/// Allocation-free: it is built after clone3. Returns the program and its length.
pub(crate) fn tracing_filter(
    arch: Arch,
    sendmsg: u32,
    socket: i32,
) -> ([Instruction; TRACING_FILTER_LEN], usize) {
    let (head, len) = prologue(arch);
    let mut program = [instruction(RET_K, 0, 0, RET_USER_NOTIF); TRACING_FILTER_LEN];
    program[..len].copy_from_slice(&head[..len]);
    let tail = [
        instruction(LD_ABS_W, 0, 0, DATA_NR),
        instruction(JMP_JEQ_K, 0, 3, sendmsg),
        instruction(LD_ABS_W, 0, 0, DATA_ARG0_LOW),
        instruction(JMP_JEQ_K, 0, 1, socket as u32),
        instruction(RET_K, 0, 0, RET_ALLOW),
        instruction(RET_K, 0, 0, RET_USER_NOTIF),
    ];
    program[len..len + tail.len()].copy_from_slice(&tail);
    (program, len + tail.len())
}

/// Compiles `profile` for `arch`.
///
/// The program is the prologue, then a binary search on the system call number, then the
/// rules' programs chained in order for the few numbers whose verdict depends on arguments.
/// A number that no rule names gets the default action from the search, and one whose first
/// rule has no conditions gets that rule's action, so no verdict changes; but the path of
/// almost every system call is a dozen instructions instead of a walk through every rule.
/// That matters twice: the kernel runs the filter once per system call number when it loads
/// it (to learn which numbers it may allow without running the filter), which every sandbox
/// pays at start-up, and it runs the whole path for every call it cannot allow that way.
pub(crate) fn compile(profile: &Profile, groups: &Groups, arch: Arch) -> Result<Program> {
    let mut rules = Vec::new();
    // Each number's verdict, as decided by the first rule that names it.
    let mut first: BTreeMap<u32, Verdict> = BTreeMap::new();
    for rule in &profile.rules {
        let mut numbers = BTreeSet::new();
        groups.expand(&rule.syscalls, arch, &mut numbers, 0)?;
        for &number in &numbers {
            first.entry(number).or_insert(if rule.when.is_empty() {
                Verdict::Return(u32::from(rule.action.seccompiler()))
            } else {
                Verdict::Chain
            });
        }
        rules.push((rule, numbers));
    }
    let chained: BTreeSet<u32> = first
        .iter()
        .filter(|(_, verdict)| **verdict == Verdict::Chain)
        .map(|(number, _)| *number)
        .collect();
    let chain = rule_chain(&rules, arch, Some(&chained))?;
    let default = instruction(RET_K, 0, 0, u32::from(profile.default.seccompiler()));
    let (head, len) = prologue(arch);
    let mut out = head[..len].to_vec();
    out.extend(dispatch(&ranges(&first), default));
    out.extend(chain);
    out.push(default);
    let out = tighten(&out);
    if out.len() > MAX_INSTRUCTIONS {
        return fail(
            0,
            format!(
                "the filter has {} instructions; the kernel takes at most {MAX_INSTRUCTIONS}",
                out.len()
            ),
        );
    }
    Ok(Program {
        instructions: out,
        // Each number once, though several rules name it (clone: allowed without the
        // namespace flags, refused with them).
        syscalls: first.len(),
    })
}

/// What the dispatch does with a system call number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Return this action.
    Return(u32),
    /// Run the rule chain: the verdict depends on the arguments.
    Chain,
}

/// The rules' programs, chained in order: a rule that does not match jumps to the next,
/// and the last falls through to what follows the chain (the default action). With `only`,
/// each rule tests only the numbers in it, and a rule left with none is left out.
fn rule_chain(
    rules: &[(&Rule, BTreeSet<u32>)],
    arch: Arch,
    only: Option<&BTreeSet<u32>>,
) -> Result<Vec<Instruction>> {
    let mut out = Vec::new();
    let no_match = u32::from(NO_MATCH);
    for (rule, numbers) in rules {
        let numbers: BTreeSet<u32> = match only {
            Some(only) => numbers.intersection(only).copied().collect(),
            None => numbers.clone(),
        };
        if numbers.is_empty() {
            continue;
        }
        let seccompiler_error = |e: seccompiler::BackendError| TextError {
            at: rule.at,
            message: format!("seccompiler: {e}"),
        };
        let alternatives = rule
            .when
            .iter()
            .map(|clauses| {
                let conditions = clauses
                    .iter()
                    .map(|c| {
                        let width = if c.low32 {
                            SeccompCmpArgLen::Dword
                        } else {
                            SeccompCmpArgLen::Qword
                        };
                        SeccompCondition::new(c.arg, width, c.op.clone(), c.value)
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                SeccompRule::new(conditions)
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(seccompiler_error)?;
        let map: BTreeMap<i64, Vec<SeccompRule>> = numbers
            .into_iter()
            .map(|n| (i64::from(n), alternatives.clone()))
            .collect();
        let filter = SeccompFilter::new(map, NO_MATCH, rule.action.seccompiler(), target(arch))
            .map_err(seccompiler_error)?;
        let program: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| seccompiler_error(e))?;
        // seccompiler starts each program with the same three-instruction architecture check
        // as the prologue; what follows loads the number and tests it.
        let body = program.get(3..).unwrap_or_default();
        let start = out.len();
        let end = start + body.len();
        for (i, insn) in body.iter().enumerate() {
            let mut insn = instruction(insn.code, insn.jt, insn.jf, insn.k);
            if insn.code == RET_K && insn.k == no_match {
                // Not this rule: on to the next one, which begins where this one ends.
                insn = instruction(JMP_JA, 0, 0, (end - (start + i + 1)) as u32);
            }
            out.push(insn);
        }
    }
    Ok(out)
}

/// The same program without the jumps to jumps and the instructions no path reaches that
/// seccompiler's programs leave once chained: the kernel checks, converts and JIT-compiles
/// every instruction at each start-up (a third to a half of a microsecond each here).
fn tighten(program: &[Instruction]) -> Vec<Instruction> {
    const BPF_JMP: u16 = 0x05;
    const BPF_RET: u16 = 0x06;
    let len = program.len();
    let class = |i: usize| program[i].code & 0x07;
    // Where a jump to `target` ends up once it has followed unconditional jumps.
    let through = |mut target: usize| {
        while target < len && program[target].code == JMP_JA {
            target += 1 + program[target].k as usize;
        }
        target
    };
    // Each jump's targets, threaded through unconditional jumps where the offset still
    // fits (it only shrinks once instructions are removed).
    let mut jumps: Vec<(usize, usize)> = Vec::with_capacity(len);
    for (i, insn) in program.iter().enumerate() {
        let thread = |offset: usize, limit: usize| {
            let target = through(i + 1 + offset);
            if target - (i + 1) <= limit {
                target
            } else {
                i + 1 + offset
            }
        };
        jumps.push(match (class(i), insn.code) {
            (_, JMP_JA) => {
                let target = thread(insn.k as usize, u32::MAX as usize);
                (target, target)
            }
            (BPF_JMP, _) => (
                thread(usize::from(insn.jt), usize::from(u8::MAX)),
                thread(usize::from(insn.jf), usize::from(u8::MAX)),
            ),
            _ => (i + 1, i + 1),
        });
    }
    // What some path reaches (every jump goes forward), and falls through to.
    let mut reached = vec![false; len + 1];
    reached[0] = true;
    for i in 0..len {
        if reached[i] && class(i) != BPF_RET {
            let (taken, not) = jumps[i];
            reached[taken] = true;
            reached[not] = true;
        }
    }
    // Kept: what some path reaches, but for a `JA` to the next instruction kept.
    let mut keep = vec![false; len];
    let mut next_kept = len;
    for i in (0..len).rev() {
        keep[i] = reached[i] && !(program[i].code == JMP_JA && jumps[i].0 == next_kept);
        if keep[i] {
            next_kept = i;
        }
    }
    // The new place of each old one: how many are kept before it (for one left out, that is
    // the place of the next one kept, where a jump to it goes on).
    let mut place = Vec::with_capacity(len + 1);
    let mut count = 0;
    for &kept in &keep {
        place.push(count);
        count += usize::from(kept);
    }
    place.push(count);
    let mut out = Vec::with_capacity(count);
    for i in (0..len).filter(|&i| keep[i]) {
        let mut insn = program[i];
        let (taken, not) = jumps[i];
        let offset = |target: usize| place[target] - (place[i] + 1);
        if insn.code == JMP_JA {
            insn.k = offset(taken) as u32;
        } else if class(i) == BPF_JMP {
            insn.jt = offset(taken) as u8;
            insn.jf = offset(not) as u8;
        }
        out.push(insn);
    }
    out
}

/// Runs of consecutive numbers with the same verdict: `(first, last, verdict)`, ascending.
fn ranges(verdicts: &BTreeMap<u32, Verdict>) -> Vec<(u32, u32, Verdict)> {
    let mut out: Vec<(u32, u32, Verdict)> = Vec::new();
    for (&number, &verdict) in verdicts {
        match out.last_mut() {
            Some((_, last, same)) if *same == verdict && number.checked_sub(1) == Some(*last) => {
                *last = number;
            }
            _ => out.push((number, number, verdict)),
        }
    }
    out
}

/// Loads the system call number and searches for its verdict: a binary search over the
/// runs of numbers that share one, `ranges` and the default's between them. A number whose
/// verdict is `Chain` jumps to the rule chain, which follows the dispatch.
fn dispatch(ranges: &[(u32, u32, Verdict)], default: Instruction) -> Vec<Instruction> {
    if ranges.is_empty() {
        return Vec::new();
    }
    let runs = runs(ranges, Verdict::Return(default.k));
    let mut out = vec![instruction(LD_ABS_W, 0, 0, DATA_NR)];
    // One instruction per verdict after the tree, `Chain` last (it falls through to the
    // chain), if every jump of the tree can reach them: the tree's leaves are then jumps.
    let mut verdicts: Vec<Verdict> = Vec::new();
    for (_, verdict) in &runs {
        if !verdicts.contains(verdict) {
            verdicts.push(*verdict);
        }
    }
    verdicts.sort_by_key(|verdict| *verdict == Verdict::Chain);
    if runs.len() - 1 + verdicts.len() <= usize::from(u8::MAX) {
        let mut leaves = Vec::new();
        if runs.len() > 1 {
            shared_leaves_tree(&runs, &mut out, &mut leaves);
        } else {
            leaves.push((out.len(), false, runs[0].1));
            out.push(instruction(JMP_JA, 0, 0, 0));
        }
        let first = out.len();
        for verdict in &verdicts {
            if let Verdict::Return(action) = verdict {
                out.push(instruction(RET_K, 0, 0, *action));
            }
        }
        for (at, taken, verdict) in leaves {
            let index = verdicts.iter().position(|v| *v == verdict).unwrap_or(0);
            // Within reach: the whole dispatch is at most 255 instructions long.
            let offset = (first + index - (at + 1)) as u8;
            match (out[at].code, taken) {
                (JMP_JA, _) => out[at].k = u32::from(offset),
                (_, true) => out[at].jt = offset,
                (_, false) => out[at].jf = offset,
            }
        }
    } else {
        let mut to_chain = Vec::new();
        inline_leaves_tree(&runs, &mut out, &mut to_chain);
        let end = out.len();
        for i in to_chain {
            out[i].k = (end - (i + 1)) as u32;
        }
    }
    out
}

/// Every number's verdict, as runs from 0 up: `(first number, verdict)`, with `default`
/// between `ranges` (ascending, not overlapping), and no two neighbours alike.
fn runs(ranges: &[(u32, u32, Verdict)], default: Verdict) -> Vec<(u32, Verdict)> {
    let mut runs = vec![(0, default)];
    let mut begin = |start: u32, verdict: Verdict| {
        match runs.last_mut() {
            Some(last) if last.0 == start => last.1 = verdict,
            Some(last) if last.1 == verdict => return,
            _ => runs.push((start, verdict)),
        }
        if let [.., (_, before), (_, now)] = runs[..]
            && before == now
        {
            runs.pop();
        }
    };
    for &(first, last, verdict) in ranges {
        begin(first, verdict);
        if let Some(after) = last.checked_add(1) {
            begin(after, default);
        }
    }
    runs
}

/// Appends a binary search tree over `runs` (at least two) whose leaves are jumps to an
/// instruction per verdict, placed after it: `(instruction, taken branch?, verdict)` in
/// `leaves`, patched by the caller. Every jump goes forward, to the right subtree (taken)
/// or the left one, which follows the node.
fn shared_leaves_tree(
    runs: &[(u32, Verdict)],
    out: &mut Vec<Instruction>,
    leaves: &mut Vec<(usize, bool, Verdict)>,
) {
    let (low, high) = runs.split_at(runs.len() / 2);
    let at = out.len();
    out.push(instruction(JMP_JGE_K, 0, 0, high[0].0));
    for (half, taken) in [(low, false), (high, true)] {
        match half {
            [(_, verdict)] => leaves.push((at, taken, *verdict)),
            _ => {
                if taken {
                    out[at].jt = (out.len() - (at + 1)) as u8;
                }
                shared_leaves_tree(half, out, leaves);
            }
        }
    }
}

/// Appends a binary search tree over `runs` whose leaves are the verdicts' instructions
/// themselves (for trees too large for [`shared_leaves_tree`]), and the positions of its
/// jumps to the rule chain (patched once the end of the dispatch is known) to `to_chain`.
/// A jump over a subtree too long for a conditional jump's 8-bit offset goes through a `JA`.
fn inline_leaves_tree(
    runs: &[(u32, Verdict)],
    out: &mut Vec<Instruction>,
    to_chain: &mut Vec<usize>,
) {
    if let [(_, verdict)] = runs {
        match verdict {
            Verdict::Return(action) => out.push(instruction(RET_K, 0, 0, *action)),
            Verdict::Chain => {
                to_chain.push(out.len());
                out.push(instruction(JMP_JA, 0, 0, 0));
            }
        }
        return;
    }
    let (low, high) = runs.split_at(runs.len() / 2);
    let below = inline_leaves_len(low);
    match u8::try_from(below) {
        Ok(skip) => out.push(instruction(JMP_JGE_K, skip, 0, high[0].0)),
        Err(_) => out.extend([
            instruction(JMP_JGE_K, 0, 1, high[0].0),
            instruction(JMP_JA, 0, 0, below as u32),
        ]),
    }
    inline_leaves_tree(low, out, to_chain);
    inline_leaves_tree(high, out, to_chain);
}

/// How many instructions `inline_leaves_tree` appends for `runs`.
fn inline_leaves_len(runs: &[(u32, Verdict)]) -> usize {
    if runs.len() <= 1 {
        return 1;
    }
    let (low, high) = runs.split_at(runs.len() / 2);
    let below = inline_leaves_len(low);
    below + inline_leaves_len(high) + if below <= usize::from(u8::MAX) { 1 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::toml;

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS: u32 = 0x0005_0026;

    /// Runs a filter on one system call as the kernel would, on a `seccomp_data` of `arch`,
    /// `nr` and `args`; returns the action.
    fn run(program: &[Instruction], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        run_counted(program, arch, nr, args).0
    }

    /// `run`, and how many instructions it took.
    fn run_counted(program: &[Instruction], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
        let load = |offset: u32| -> u32 {
            match offset {
                0 => nr,
                4 => arch,
                16..=63 => {
                    let arg = args[(offset as usize - 16) / 8];
                    if offset.is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load of seccomp_data offset {offset}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        for steps in 1..=program.len() {
            let insn = program[pc];
            let jump = |taken: bool| 1 + usize::from(if taken { insn.jt } else { insn.jf });
            pc += match insn.code {
                0x20 => {
                    acc = load(insn.k);
                    1
                }
                0x54 => {
                    acc &= insn.k;
                    1
                }
                0x05 => 1 + insn.k as usize,
                0x15 => jump(acc == insn.k),
                0x25 => jump(acc > insn.k),
                0x35 => jump(acc >= insn.k),
                0x45 => jump(acc & insn.k != 0),
                0x06 => return (insn.k, steps),
                other => panic!("opcode {other:#x} at {pc}"),
            };
        }
        panic!("the filter ran past its end or looped");
    }

    fn default_profile(arch: Arch) -> Vec<Instruction> {
        let text = include_str!("../../policies/seccomp/default.toml");
        let groups_text = include_str!("../../policies/seccomp/groups.toml");
        let groups = read_groups(&toml::parse(groups_text).unwrap()).unwrap();
        let profile = read_profile(&toml::parse(text).unwrap()).unwrap();
        compile(&profile, &groups, arch).unwrap().instructions
    }

    fn audit(arch: Arch) -> u32 {
        match arch {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// What the issue asks the default profile to refuse, unconditionally, with EPERM.
    const REFUSED: &[&str] = &[
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "open_tree",
        "move_mount",
        "mount_setattr",
        "unshare",
        "setns",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "add_key",
        "request_key",
        "keyctl",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "iopl",
        "ioperm",
        "quotactl",
        "lookup_dcookie",
        "open_by_handle_at",
        "name_to_handle_at",
    ];

    #[test]
    fn default_profile_refuses_exactly_the_dangerous_families() {
        for arch in Arch::ALL {
            let program = default_profile(arch);
            let call = |name: &str, args: [u64; 6]| {
                run(&program, audit(arch), arch.number(name).unwrap(), args)
            };
            for name in REFUSED.iter().filter(|n| arch.number(n).is_some()) {
                assert_eq!(call(name, [0; 6]), EPERM, "{name} on {}", arch.name());
            }
            for name in [
                "read", "write", "openat", "execve", "getppid", "mmap", "socket", "wait4",
            ] {
                assert_eq!(call(name, [0; 6]), ALLOW, "{name} on {}", arch.name());
            }
            assert_eq!(call("clone3", [0; 6]), ENOSYS);
            // clone: a plain fork is fine, any namespace flag is not.
            assert_eq!(
                call("clone", [u64::from(libc::SIGCHLD as u32), 0, 0, 0, 0, 0]),
                ALLOW
            );
            for flag in [
                0x0002_0000u64,
                0x0200_0000,
                0x0400_0000,
                0x0800_0000,
                0x1000_0000,
                0x2000_0000,
                0x4000_0000,
            ] {
                let flags = flag | 0x0001_0000 | libc::SIGCHLD as u64;
                assert_eq!(
                    call("clone", [flags, 0, 0, 0, 0, 0]),
                    EPERM,
                    "clone {flag:#x}"
                );
            }
            // personality: the default persona and the query only.
            assert_eq!(call("personality", [0; 6]), ALLOW);
            assert_eq!(call("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
            assert_eq!(call("personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
            // ioctl: TIOCSTI and TIOCLINUX, also with high bits set; others pass.
            for request in [0x5412u64, 0x541c, 0xdead_0000_0000_5412, 0x1_0000_541c] {
                assert_eq!(
                    call("ioctl", [0, request, 0, 0, 0, 0]),
                    EPERM,
                    "ioctl {request:#x}"
                );
            }
            assert_eq!(call("ioctl", [0, 0x541b, 0, 0, 0, 0]), ALLOW, "FIONREAD");
        }
    }

    #[test]
    fn foreign_architectures_and_x32_are_killed() {
        let program = default_profile(Arch::X86_64);
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        assert_eq!(run(&program, AUDIT_ARCH_I386, 1, [0; 6]), RET_KILL_PROCESS);
        // x32's getppid: the x86_64 architecture, with the x32 bit in the number.
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 110, [0; 6]),
            RET_KILL_PROCESS
        );
        // -1, a ptracer's skipped call, is no x32 call: ENOSYS, as without a filter.
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
            RET_ERRNO | ENOSYS
        );
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, 110, [0; 6]),
            RET_ALLOW,
            "getppid"
        );
        let program = default_profile(Arch::Aarch64);
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, 110, [0; 6]),
            RET_KILL_PROCESS
        );
    }

    #[test]
    fn rules_apply_in_order_and_allowlists_work() {
        let text = r#"
            default_action = "kill_process"
            [[rules]]
            action = "errno:EACCES"
            syscalls = ["openat"]
            when = ["arg2 & 0x40"]
            [[rules]]
            action = "allow"
            syscalls = ["openat", "read", "@namespaces"]
        "#;
        let profile = read_profile(&toml::parse(text).unwrap()).unwrap();
        let arch = Arch::native().unwrap();
        let program = compile(&profile, &Groups::default(), arch);
        // @namespaces is unknown without the groups file.
        assert!(program.is_err());
        let groups =
            read_groups(&toml::parse("namespaces = [\"unshare\", \"setns\"]").unwrap()).unwrap();
        let program = compile(&profile, &groups, arch).unwrap();
        // openat, read, unshare and setns: openat once, though two rules name it.
        assert_eq!(program.syscalls, 4);
        let nr = |name| arch.number(name).unwrap();
        let program = &program.instructions;
        assert_eq!(
            run(program, audit(arch), nr("openat"), [0, 0, 0x40, 0, 0, 0]),
            0x0005_000d
        );
        assert_eq!(run(program, audit(arch), nr("openat"), [0; 6]), ALLOW);
        assert_eq!(run(program, audit(arch), nr("setns"), [0; 6]), ALLOW);
        assert_eq!(
            run(program, audit(arch), nr("write"), [0; 6]),
            RET_KILL_PROCESS
        );
    }

    #[test]
    fn profile_errors_have_positions() {
        let bad = |text: &str| {
            let table = toml::parse(text).unwrap();
            let groups = Groups::default();
            let e = read_profile(&table)
                .and_then(|p| compile(&p, &groups, Arch::native().unwrap()).map(drop))
                .unwrap_err();
            (toml::line_col(text, e.at), e.message)
        };
        assert_eq!(
            bad("[[rules]]\naction = \"allow\"\nsyscalls = [\"read\", \"no_such\"]"),
            ((3, 21), "unknown system call \"no_such\"".to_string())
        );
        assert_eq!(
            bad("[[rules]]\naction = \"nope\"").1,
            "unknown action \"nope\" (expected allow, log, kill_process, kill_thread, trap or errno:NAME)"
        );
        assert_eq!(bad("[[rules]]\nsyscalls = []").1, "a rule needs \"action\"");
        let (at, why) =
            bad("[[rules]]\naction = \"allow\"\nsyscalls = [\"ioctl\"]\nwhen = [\"arg9 == 1\"]");
        assert_eq!(at, (4, 9));
        assert!(
            why.starts_with("cannot read condition \"arg9 == 1\""),
            "{why}"
        );
        assert_eq!(
            bad("[[rules]]\naction = \"allow\"\nsyscalls = [\"@nope\"]").1,
            "unknown group \"@nope\" (see 'hakoniwa seccomp groups')"
        );
    }

    /// The program the rules make without the dispatch: every rule's program in turn.
    fn plain_chain(profile: &Profile, groups: &Groups, arch: Arch) -> Vec<Instruction> {
        let rules: Vec<(&Rule, BTreeSet<u32>)> = profile
            .rules
            .iter()
            .map(|rule| {
                let mut numbers = BTreeSet::new();
                groups
                    .expand(&rule.syscalls, arch, &mut numbers, 0)
                    .unwrap();
                (rule, numbers)
            })
            .collect();
        let (head, len) = prologue(arch);
        let mut out = head[..len].to_vec();
        out.extend(rule_chain(&rules, arch, None).unwrap());
        out.push(instruction(
            RET_K,
            0,
            0,
            u32::from(profile.default.seccompiler()),
        ));
        out
    }

    #[test]
    fn the_dispatch_changes_no_verdict() {
        let groups_text = include_str!("../../policies/seccomp/groups.toml");
        let groups = read_groups(&toml::parse(groups_text).unwrap()).unwrap();
        // The default profile; an allowlist whose later rules name numbers that earlier,
        // conditional rules name too; and one rule naming every number of a long run, with
        // gaps, so that the search tree needs its long jumps.
        let many: Vec<String> = syscalls::X86_64
            .iter()
            .filter(|(_, n)| n % 3 != 0)
            .map(|(name, _)| format!("\"{name}\""))
            .collect();
        let profiles = [
            include_str!("../../policies/seccomp/default.toml").to_string(),
            r#"
                default_action = "kill_process"
                [[rules]]
                action = "errno:EACCES"
                syscalls = ["openat", "ioctl"]
                when = ["arg2 & 0x40", "arg1.lo == 0x5412"]
                [[rules]]
                action = "allow"
                syscalls = ["@default", "@basic-io", "@file-system", "openat", "ioctl"]
                [[rules]]
                action = "log"
                syscalls = ["getppid", "openat"]
            "#
            .to_string(),
            format!(
                "default_action = \"allow\"\n[[rules]]\naction = \"errno:EPERM\"\n\
                 syscalls = [{}]\n[[rules]]\naction = \"trap\"\nsyscalls = [\"getppid\"]\n\
                 when = [\"arg0 == 1\"]",
                many.join(", ")
            ),
        ];
        let args = [
            [0; 6],
            [0x4000_0000 | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
            [0x0040_0000, 0x5412, 0x40, 0, 0, 0],
            [0xffff_ffff, 0x1_0000_541c, 0, 0, 0, 0],
            [1, 0x541b, 0, 0, 0, 0],
        ];
        for text in &profiles {
            let profile = read_profile(&toml::parse(text).unwrap()).unwrap();
            for arch in Arch::ALL {
                let fast = compile(&profile, &groups, arch).unwrap().instructions;
                let plain = plain_chain(&profile, &groups, arch);
                for nr in (0..1024).chain([X32_SYSCALL_BIT + 1, u32::MAX]) {
                    for args in args {
                        assert_eq!(
                            run(&fast, audit(arch), nr, args),
                            run(&plain, audit(arch), nr, args),
                            "{} {nr} {args:x?}",
                            arch.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn most_system_calls_take_a_short_path() {
        // The kernel runs the filter for every number when it loads it; without the
        // dispatch, an allowed call's path crossed every rule (114 instructions on x86_64).
        for arch in Arch::ALL {
            let program = default_profile(arch);
            for name in ["getppid", "read", "openat"] {
                let nr = arch.number(name).unwrap();
                let (action, steps) = run_counted(&program, audit(arch), nr, [0; 6]);
                assert_eq!(action, ALLOW);
                assert!(steps <= 16, "{name}: {steps} steps on {}", arch.name());
            }
        }
    }

    #[test]
    fn the_default_filter_is_short() {
        // The kernel checks, converts and JIT-compiles every instruction at each start-up,
        // and runs the filter once per system call number to fill its cache. The tree's
        // leaves share one instruction per verdict and the chained rules lose their jumps
        // to jumps: 81 instructions on x86_64, where it was 211 with a bounds check at
        // each leaf, seccompiler's programs as they come, and seven clone conditions.
        for arch in Arch::ALL {
            let len = default_profile(arch).len();
            assert!(len <= 85, "{len} instructions on {}", arch.name());
        }
    }

    #[test]
    fn tracing_filter_notifies_all_but_the_handover() {
        let arch = Arch::native().unwrap();
        let sendmsg = arch.number("sendmsg").unwrap();
        let (program, len) = tracing_filter(arch, sendmsg, 7);
        let program = &program[..len];
        assert_eq!(
            run(program, audit(arch), sendmsg, [7, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(program, audit(arch), sendmsg, [8, 0, 0, 0, 0, 0]),
            RET_USER_NOTIF
        );
        assert_eq!(
            run(program, audit(arch), arch.number("openat").unwrap(), [7; 6]),
            RET_USER_NOTIF
        );
        assert_eq!(run(program, 0x4000_0003, 1, [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn instructions_round_trip_through_bytes() {
        let insn = Instruction {
            code: 0x15,
            jt: 2,
            jf: 7,
            k: 0xdead_beef,
        };
        assert_eq!(Instruction::from_bytes(insn.to_bytes()), insn);
    }
}
