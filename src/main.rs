//! The `augloader` command line; everything it does lives in `src/cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
