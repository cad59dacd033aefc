//! `nexero simulate`: realistic headsets against a running appliance (`--url`).

use std::process::ExitCode;

use crate::bench::simulate::{simulate, SimulateArgs};

pub fn run(args: SimulateArgs) -> ExitCode {
    if super::runtime().block_on(simulate(args)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
