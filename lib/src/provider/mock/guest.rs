//! The mock guest: the users cloud-init would create from the user-data, and a
//! small interpreter for the commands BlockHost runs in guests.
//!
//! Understood commands (anything else answers `not found`, exit 127):
//! `getent passwd <user>`, `usermod -c <gecos> <user>`, `echo [-n] <words>`,
//! `exit [<n>]`, `true`, `false`, `hostname`.

use crate::provider::ExecOutput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestUser {
    pub uid: u32,
    pub gecos: String,
}

pub type Users = BTreeMap<String, GuestUser>;

/// The `users:` list of a cloud-config document (the `default` entry is skipped).
pub fn users_from_user_data(user_data: &str) -> Users {
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(user_data) else { return Users::new() };
    let mut users = Users::new();
    for entry in doc.get("users").and_then(|u| u.as_array()).into_iter().flatten() {
        let Some(name) = entry.get("name").and_then(|n| n.as_str()) else { continue };
        let gecos = entry.get("gecos").and_then(|g| g.as_str()).unwrap_or("").to_string();
        let uid = 1000 + u32::try_from(users.len()).unwrap_or(0);
        users.insert(name.to_string(), GuestUser { uid, gecos });
    }
    users
}

fn output(exit_code: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> ExecOutput {
    ExecOutput { exit_code, stdout: stdout.into(), stderr: stderr.into() }
}

/// Runs `command` as `/bin/sh -c` would for the supported set; may change `users`.
pub fn run(command: &str, hostname: &str, users: &mut Users) -> ExecOutput {
    let words = match shell_words::split(command) {
        Ok(words) => words,
        Err(_) => return output(2, "", "sh: 1: Syntax error: Unterminated quoted string\n"),
    };
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["true"] => output(0, "", ""),
        ["false"] => output(1, "", ""),
        ["hostname"] => output(0, format!("{hostname}\n"), ""),
        ["exit"] => output(0, "", ""),
        ["exit", code] => match code.parse::<u8>() {
            Ok(code) => output(i32::from(code), "", ""),
            Err(_) => output(2, "", format!("sh: 1: exit: Illegal number: {code}\n")),
        },
        ["echo", "-n", rest @ ..] => output(0, rest.join(" "), ""),
        ["echo", rest @ ..] => output(0, format!("{}\n", rest.join(" ")), ""),
        ["getent", "passwd", user] => match users.get(*user) {
            Some(u) => output(0, format!("{user}:x:{}:{}:{}:/home/{user}:/bin/bash\n", u.uid, u.uid, u.gecos), ""),
            None => output(2, "", ""),
        },
        ["usermod", "-c", gecos, user] => {
            if gecos.contains(':') || gecos.contains('\n') {
                return output(3, "", format!("usermod: invalid field '{gecos}'\n"));
            }
            match users.get_mut(*user) {
                Some(u) => {
                    u.gecos = (*gecos).to_string();
                    output(0, "", "")
                }
                None => output(6, "", format!("usermod: user '{user}' does not exist\n")),
            }
        }
        [program, ..] => output(127, "", format!("sh: 1: {program}: not found\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        users_from_user_data(
            "#cloud-config\nusers:\n  - default\n  - name: admin\n    gecos: \"wallet=0xabc\"\n    groups: sudo\n",
        )
    }

    #[test]
    fn users_come_from_cloud_config() {
        let u = users();
        assert_eq!(u.len(), 1);
        assert_eq!(u["admin"], GuestUser { uid: 1000, gecos: "wallet=0xabc".into() });
        assert!(users_from_user_data("not: [yaml").is_empty());
        assert!(users_from_user_data("#!/bin/sh\necho hi\n").is_empty());
    }

    #[test]
    fn gecos_round_trip() {
        let mut u = users();
        let out = run("getent passwd admin", "vm", &mut u);
        assert_eq!(out, output(0, "admin:x:1000:1000:wallet=0xabc:/home/admin:/bin/bash\n", ""));
        assert_eq!(run("usermod -c 'wallet=0xabc,nft=42' 'admin'", "vm", &mut u).exit_code, 0);
        assert!(String::from_utf8(run("getent passwd admin", "vm", &mut u).stdout).unwrap().contains(":wallet=0xabc,nft=42:"));
        assert_eq!(run("usermod -c x nobody", "vm", &mut u).exit_code, 6);
        assert_eq!(run("usermod -c a:b admin", "vm", &mut u).exit_code, 3);
        assert_eq!(run("getent passwd nobody", "vm", &mut u).exit_code, 2);
    }

    #[test]
    fn small_shell() {
        let mut u = Users::new();
        assert_eq!(run("echo hello  world", "vm", &mut u).stdout, b"hello world\n");
        assert_eq!(run("echo -n x", "vm", &mut u).stdout, b"x");
        assert_eq!(run("exit 3", "vm", &mut u).exit_code, 3);
        assert_eq!(run("exit", "vm", &mut u).exit_code, 0);
        assert_eq!(run("exit x", "vm", &mut u).exit_code, 2);
        assert_eq!(run("false", "vm", &mut u).exit_code, 1);
        assert_eq!(run("hostname", "vm1", &mut u).stdout, b"vm1\n");
        let out = run("rm -rf /", "vm", &mut u);
        assert_eq!((out.exit_code, out.stderr), (127, b"sh: 1: rm: not found\n".to_vec()));
        assert_eq!(run("echo 'unterminated", "vm", &mut u).exit_code, 2);
    }
}
