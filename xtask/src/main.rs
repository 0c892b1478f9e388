//! `cargo run -p xtask -- assets <DIR>`: writes, for every executable, its man
//! page (`DIR/man/<prog>.1`) and its bash, zsh and fish completions
//! (`DIR/completions/{bash/<prog>, zsh/_<prog>, fish/<prog>.fish}`), all made
//! from the clap definitions the executables parse their arguments with.

use blockhost_cli::manual::Manual;
use clap::Parser;
use clap_complete::Shell;
use roff::{bold, roman, Roff};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask")]
enum Task {
    /// Generate man pages and shell completions into DIR
    Assets { dir: PathBuf },
}

/// Each shell's directory and file name, as the Debian package installs them.
fn completion_path(shell: Shell, name: &str) -> PathBuf {
    match shell {
        Shell::Zsh => PathBuf::from("zsh").join(format!("_{name}")),
        Shell::Fish => PathBuf::from("fish").join(format!("{name}.fish")),
        _ => PathBuf::from(shell.to_string()).join(name),
    }
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("generated paths have a parent"))?;
    std::fs::write(path, bytes)
}

/// clap_mangen's sections (NAME, SYNOPSIS, DESCRIPTION, OPTIONS), then the
/// manual's (EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES) in place of the
/// `--help` text that carries them, then VERSION.
fn man_page(command: clap::Command, manual: &Manual) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command).section("1").manual("BlockHost");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut roff = Roff::new();
    for (heading, entries) in manual.sections() {
        roff.control("SH", [heading]);
        for (term, meaning) in entries {
            roff.control("TP", []).text([bold(*term)]).text([roman(*meaning)]);
        }
    }
    roff.to_writer(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}

fn completion(shell: Shell, mut command: clap::Command, name: &str) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

fn assets(dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for (name, command, manual) in blockhost_cli::commands::all() {
        write(&dir.join("man").join(format!("{name}.1")), &man_page(command.clone(), &manual)?)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            write(&dir.join("completions").join(completion_path(shell, name)), &completion(shell, command.clone(), name))?;
        }
        written += 1;
    }
    Ok(written)
}

fn main() -> ExitCode {
    let Task::Assets { dir } = Task::parse();
    match assets(&dir) {
        Ok(count) => {
            eprintln!("xtask: man pages and completions of {count} executables in {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// What `man` shows of a page given on its standard input.
    fn shown_by_man(page: &[u8]) -> std::io::Result<String> {
        let mut man = Command::new("man").args(["-l", "-"]).env("MANWIDTH", "100").env("MAN_KEEP_FORMATTING", "").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        man.stdin.take().expect("piped").write_all(page)?;
        let out = man.wait_with_output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn man_blockhost_vm_create_shows_the_manual_sections() {
        let (_, command, manual) = blockhost_cli::commands::all().into_iter().find(|(name, _, _)| *name == "blockhost-vm-create").expect("create is a command");
        let page = man_page(command, &manual).unwrap();
        let shown = shown_by_man(&page).expect("man(1) renders the page (package man-db)");
        let headings: Vec<&str> = shown.lines().filter(|l| !l.is_empty() && !l.starts_with(' ')).collect();
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES", "ENVIRONMENT", "EXAMPLES"] {
            assert!(headings.contains(&heading), "{heading} missing from:\n{shown}");
        }
        assert!(shown.contains("overcommit"), "the FILES section names db.yaml's overcommit:\n{shown}");
    }
}
