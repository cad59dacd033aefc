//! `nexero bench`: this machine's ceilings and the appliance against them.

use std::process::ExitCode;

use crate::bench::BenchArgs;

pub fn run(args: BenchArgs) -> ExitCode {
    let runtime = super::runtime();
    if let Some(port) = args.minimal_server {
        runtime.block_on(crate::bench::serve_minimal(port));
        return ExitCode::SUCCESS;
    }
    match runtime.block_on(crate::bench::bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexero bench: {e}");
            ExitCode::FAILURE
        }
    }
}
