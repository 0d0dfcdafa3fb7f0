//! The `hone` binary: everything lives in `hone-cli`; this file only hands over the process.

fn main() -> std::process::ExitCode {
    hone_cli::main()
}
