//! The WASI a plugin gets, in one of two shapes ([`WasiLinking`]).
//!
//! `Minimal` links only what a `wasm32-wasip2` guest built with Rust's standard
//! library imports to start: `wasi:io` (error, poll, streams), `wasi:cli`
//! (environment, exit, stdin/stdout/stderr, terminal-*), `wasi:clocks` (wall,
//! monotonic) and `wasi:random`; a component importing `wasi:filesystem` or
//! `wasi:sockets` then fails to load with an error naming the import. `Inert`
//! (the default) also links `wasi:filesystem` and `wasi:sockets`, which runtimes
//! such as componentize-py's Python import unconditionally, but with nothing
//! behind them: no preopened directory (so no file can be opened), TCP, UDP and
//! name lookups disabled and every socket address denied. Either way the WASI
//! context is empty (no arguments, no environment, stdin empty, stdout/stderr
//! discarded), see `state.rs`.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::sync;
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

/// Selects the resource table for the `wasi:io` host functions.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Which WASI interfaces the host links for plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WasiLinking {
    /// io, cli, clocks, random: enough for Rust guests; components importing
    /// the filesystem or sockets are refused at load.
    Minimal,
    /// Also filesystem and sockets, inert (no preopens, no network): needed by
    /// Python and JavaScript guests.
    #[default]
    Inert,
}

/// Adds the WASI interfaces of `linking` to `linker`.
pub(crate) fn add_wasi<T: WasiView>(
    linker: &mut Linker<T>,
    linking: WasiLinking,
) -> wasmtime::Result<()> {
    match linking {
        WasiLinking::Minimal => add_minimal_wasi(linker),
        WasiLinking::Inert => wasmtime_wasi::p2::add_to_linker_sync(linker),
    }
}

/// Adds the minimal WASI to `linker`.
fn add_minimal_wasi<T: WasiView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let l = linker;
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    Ok(())
}
