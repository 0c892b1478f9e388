//! `cargo run -p xtask -- assets <DIR>`: writes, for every executable, its man
//! page (`DIR/man/<prog>.1`) and its bash, zsh and fish completions
//! (`DIR/completions/{bash/<prog>, zsh/_<prog>, fish/<prog>.fish}`), all made
//! from the clap definitions the executables parse their arguments with.

use clap::Parser;
use clap_complete::Shell;
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

fn man_page(command: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).section("1").manual("BlockHost").render(&mut page)?;
    Ok(page)
}

fn completion(shell: Shell, mut command: clap::Command, name: &str) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

fn assets(dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for (name, command) in blockhost_cli::commands::all() {
        write(&dir.join("man").join(format!("{name}.1")), &man_page(command.clone())?)?;
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
