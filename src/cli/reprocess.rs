//! `nexero reprocess`: re-reads the uploads once refused as not understood. It takes the
//! database's writer lock, so it refuses to run while the appliance runs on the same data.

use std::process::ExitCode;

use crate::config::Overrides;

pub fn run(overrides: &Overrides) -> ExitCode {
    let settings = match super::load(overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let _logging = crate::logging::init_console(&settings.log);
    match super::runtime().block_on(crate::app::reprocess(&settings)) {
        Ok(report) => {
            println!(
                "examined {} unrecognised uploads: {} now stored ({} events), {} still not understood",
                report.examined, report.recovered, report.events, report.still_rejected
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nexero: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
