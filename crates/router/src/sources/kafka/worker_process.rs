//! The router's handle on one Kafka worker process (see `worker.rs`):
//! starting it, writing frames to its stdin, reading its frames from its
//! stdout, and telling how it ended.
//!
//! Invariants: the process never outlives its handle (dropping the handle
//! kills and reaps it); its stdout is read by a thread of its own, so the
//! worker never blocks on a full pipe while the router is busy storing; its
//! stderr is the router's (a panic or a C library's message stays visible).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

use super::wire::{self, FromWorker, ToWorker, WireError};

/// The subcommand of the worker program that runs a worker.
pub const SUBCOMMAND: &str = "kafka-worker";

/// A running worker process.
pub(crate) struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Frames from the worker; closed when its stdout closes (it exited).
    pub frames: mpsc::UnboundedReceiver<Result<FromWorker, WireError>>,
    program: PathBuf,
}

impl WorkerProcess {
    /// Starts `<program> kafka-worker --source <source> --group <group>`
    /// (the names only tell workers apart in `ps`) with piped stdin and
    /// stdout.
    pub fn spawn(program: &Path, source: &str, group: &str) -> std::io::Result<WorkerProcess> {
        let mut child = Command::new(program)
            .args([SUBCOMMAND, "--source", source, "--group", group])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (tx, frames) = mpsc::unbounded_channel();
        if let Some(mut stdout) = stdout {
            std::thread::Builder::new()
                .name("kafka-worker-reader".into())
                .spawn(move || {
                    loop {
                        match wire::read_from_worker(&mut stdout) {
                            Ok(Some(frame)) => {
                                if tx.send(Ok(frame)).is_err() {
                                    return;
                                }
                            }
                            Ok(None) => return,
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                })?;
        }
        Ok(WorkerProcess {
            child,
            stdin,
            frames,
            program: program.to_path_buf(),
        })
    }

    /// Writes one frame; an error means the worker is gone (its end is then
    /// seen as the frames channel closing).
    pub fn send(&mut self, frame: &ToWorker) -> std::io::Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(std::io::Error::other("the worker's stdin is closed"));
        };
        // Frames to the worker are small (offsets), and the worker reads its
        // stdin on a thread of its own: this write does not wait on it.
        wire::write_frame(stdin, &frame.encode())
    }

    /// How the worker ended, once its stdout closed: waits up to `grace` for
    /// it to exit, then kills it.
    pub async fn exit_reason(&mut self, grace: Duration) -> String {
        self.stdin = None;
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return describe(&self.program, status),
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return format!(
                        "{} did not exit within {grace:?} and was killed",
                        self.program.display()
                    );
                }
                Err(e) => return format!("cannot wait for {}: {e}", self.program.display()),
            }
        }
    }

    /// Asks the worker to commit and exit (`Stop`, then closing its stdin),
    /// passing on its last log lines; kills it after `grace`.
    pub async fn stop(&mut self, grace: Duration, mut on_frame: impl FnMut(FromWorker)) {
        let _ = self.send(&ToWorker::Stop);
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.frames.recv()).await
        {
            on_frame(frame);
        }
        self.exit_reason(Duration::from_secs(1)).await;
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Says how a process ended, in words.
fn describe(program: &Path, status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("{} exited with status {code}", program.display()),
        (None, Some(signal)) => format!(
            "{} was killed by signal {signal}{}",
            program.display(),
            match signal {
                libc::SIGSEGV => " (SIGSEGV: a crash, likely inside librdkafka)",
                libc::SIGABRT => " (SIGABRT: an abort, likely inside librdkafka)",
                libc::SIGKILL => " (SIGKILL)",
                _ => "",
            }
        ),
        _ => format!("{} ended ({status})", program.display()),
    }
}
