//! The `signalbox` binary: argument parsing and dispatch, nothing else.
//!
//! Each verb lives in its own module under `commands/`; they call into
//! `signalbox-router` (serve, dev), the admin API over NATS (sub, signals,
//! explain, firing, publish) or `signalbox-matcher` (pattern). Exit codes: 0 on
//! success, 1 when the request was refused (an error reply, a failed check),
//! 2 when signalbox or NATS could not be reached or the input could not be read.

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the router allocates per signal (decode,
/// store, publish) on several threads, where glibc's malloc took about a tenth
/// of its CPU under load (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if matches!(cli.command, cli::Command::KafkaWorker { .. }) {
        // Its stdout carries frames to the router: no logging set up here.
        return signalbox_router::kafka::worker::main();
    }
    let service = matches!(cli.command, cli::Command::Serve(_) | cli::Command::Dev(_));
    // The span exporter is configured by the router config, so that is read
    // before the subscriber is installed (and again, unchanged, by `serve`).
    let tracing = match commands::telemetry_config(&cli.command)
        .and_then(|t| logging::init(cli.log_format, cli.verbose, service, t.as_ref()))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let code = run(cli.command);
    // Outside the runtime: the exporter's last flush blocks.
    tracing.shutdown();
    code
}

fn run(command: cli::Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
