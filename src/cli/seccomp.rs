//! `hakoniwa seccomp`: the profiles and groups a filter can be made of.

use std::ffi::OsString;

use crate::error::Error;
use crate::seccomp;

pub(crate) fn main(args: &[OsString]) -> Result<i32, Error> {
    let words = super::words(args);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["list"] => {
            for (name, description) in seccomp::profile_names() {
                println!("{name:<11} {description}");
            }
        }
        ["groups"] => {
            for (name, members) in seccomp::groups() {
                println!("@{name}: {}", members.join(" "));
            }
        }
        ["-h" | "--help"] | ["help"] => print!("{}", super::help::seccomp()),
        _ => {
            return Err(Error::Usage(format!(
                "seccomp: expected 'list' or 'groups', got {:?}",
                words.join(" ")
            )));
        }
    }
    Ok(0)
}
