//! `chorus-conformance --url nats://127.0.0.1:4222 --scenario NAME` runs one async-nats
//! scenario and prints its observation as one JSON line; `--list` prints the scenario names.
//! Exit status 1 when the scenario fails (the error goes to stderr), 2 on bad usage.

use std::process::ExitCode;
use std::time::Duration;

use chorus_conformance::{SCENARIOS, run_scenario};

/// A scenario that has not finished by then is stuck; the runner has its own limit too.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "usage: chorus-conformance --url URL --scenario NAME | --list";

#[tokio::main]
async fn main() -> ExitCode {
    let mut url = None;
    let mut scenario = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next(),
            "--scenario" => scenario = args.next(),
            "--list" => {
                for name in SCENARIOS {
                    println!("{name}");
                }
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(url), Some(name)) = (url, scenario) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match tokio::time::timeout(SCENARIO_TIMEOUT, run_scenario(&name, &url)).await {
        Err(_) => {
            eprintln!("scenario {name} did not finish within {SCENARIO_TIMEOUT:?}");
            ExitCode::FAILURE
        }
        Ok(None) => {
            eprintln!("unknown scenario {name:?}; known: {}", SCENARIOS.join(", "));
            ExitCode::from(2)
        }
        Ok(Some(Err(err))) => {
            eprintln!("scenario {name} failed: {err:#}");
            ExitCode::FAILURE
        }
        Ok(Some(Ok(observation))) => {
            println!("{observation}");
            ExitCode::SUCCESS
        }
    }
}
