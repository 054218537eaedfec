//! The compiled-artefact cache: compile each component once per engine.
//!
//! A compiled component is keyed by the SHA-256 of its bytes and the engine's
//! compatibility hash ([`Engine::precompile_compatibility_hash`]: wasmtime
//! version, compiler settings, target), so a cached artefact is only ever reused
//! by an engine that can run it. Artefacts live in memory (at most 64, then
//! that map is cleared) and, when a cache directory is configured, in
//! `<dir>/<content>-<engine>.cwasm` (written to a temporary file, then renamed,
//! so a reader never sees half a file). A cache file is read into memory, never
//! mmapped (a file truncated under a mapping would crash the process); one that
//! fails to load is deleted and the component recompiled.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components kept in memory; past this the in-memory map is
/// cleared (loaded plugins keep their own handle; the disk cache remains).
const MAX_IN_MEMORY: usize = 64;

/// How the cache has been used, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory.
    pub memory_hits: u64,
    /// Loads answered from the cache directory.
    pub disk_hits: u64,
    /// Loads that compiled the component.
    pub compiles: u64,
}

/// Feeds `Hash` output into SHA-256, for a stable engine hash.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The SHA-256 of some bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled components by content and engine.
pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_hash: String,
    memory: Mutex<HashMap<String, Component>>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> ArtifactCache {
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = hex::encode(&h.0.finalize()[..8]);
        ArtifactCache {
            dir,
            engine_hash,
            memory: Mutex::new(HashMap::new()),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
        }
    }

    /// The cache file of a component with this content hash, if there is a directory.
    pub(crate) fn path_for(&self, content: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{content}-{}.cwasm", self.engine_hash)))
    }

    /// The compiled component for `bytes` (whose hash is `content`), compiling
    /// it on a miss. Errors are the compiler's message.
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        content: &str,
        bytes: &[u8],
    ) -> Result<Component, String> {
        let key = format!("{content}-{}", self.engine_hash);
        if let Some(c) = self.memory.lock().ok().and_then(|m| m.get(&key).cloned()) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(c);
        }
        let path = self.path_for(content);
        let component = match path.as_deref().and_then(|p| load_file(engine, p)) {
            Some(c) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                let c = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
                self.compiles.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = &path {
                    store_file(&c, p);
                }
                c
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            // Bounded: redeploys would otherwise keep every old version's code.
            if m.len() >= MAX_IN_MEMORY {
                m.clear();
            }
            m.insert(key, component.clone());
        }
        Ok(component)
    }
}

/// Loads a cached artefact; a missing file is a miss, a bad one is removed.
fn load_file(engine: &Engine, path: &Path) -> Option<Component> {
    // Read, not mmap: a file truncated or replaced under a mapping would crash
    // the process (SIGBUS); a copy in memory cannot change under us.
    let bytes = std::fs::read(path).ok()?;
    // SAFETY: `deserialize` requires trusted input: the file is in the
    // host's own cache directory, was written by `store_file` below from a
    // component this host compiled, and its name carries the content hash and
    // the engine compatibility hash; wasmtime also checks the artefact's header
    // against the engine and refuses a mismatch. The cache directory must be
    // writable only by the router's user (see docs/PLUGINS.md).
    #[allow(unsafe_code)]
    let loaded = unsafe { Component::deserialize(engine, &bytes) };
    match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "discarding an unusable compiled plugin artefact");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// Writes an artefact atomically; a failure only costs a recompile later.
fn store_file(component: &Component, path: &Path) {
    let result = (|| -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
        let dir = path.parent().ok_or("no parent directory")?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot write a compiled plugin artefact");
    }
}
