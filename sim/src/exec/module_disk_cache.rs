//! Compiled modules kept on disk across processes: every test binary and bench run compiles the
//! same deployer and child Wasm, and cranelift takes 7.5 s for the deployer and 1 s for a child
//! in the test profile on the 2-core CI machine (about 8.5 s of each of ~30 test binaries); loading
//! the compiled file takes milliseconds.
//!
//! The key is the SHA-256 of the bytes wasmtime compiles (after the simulator's rewrite), so a
//! changed rewrite never loads an old file. wasmtime records its version and the engine's
//! settings in the file and refuses a file from another version or configuration; such a file
//! is compiled again and replaced. Files are written whole and renamed into place, so a process
//! never loads a half-written file of another. The cache is best effort: an unwritable directory
//! only costs the compile.
//!
//! `IC_SIM_MODULE_CACHE` names the directory (empty: no cache); by default it is
//! `target/ic-sim-module-cache` of this workspace.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// Modules smaller than this compile in milliseconds (most hand-written test modules): they are
/// not worth a file.
const MIN_CACHED_WASM_BYTES: usize = 64 * 1024;

/// Files kept: every rebuild of a canister adds one (12.7 MB for the deployer), and the
/// workspace's artifacts are a dozen modules; the oldest files beyond this are removed.
const MAX_CACHED_MODULES: usize = 32;

/// The cache directory, or `None` when the cache is off.
pub(super) fn dir() -> Option<PathBuf> {
    match std::env::var_os("IC_SIM_MODULE_CACHE") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("ic-sim-module-cache"),
        ),
    }
}

/// The compiled `wasm` from `dir`, or compiled now by `compile` and stored in `dir`.
pub(super) fn load_or_compile(
    dir: Option<&Path>,
    engine: &Engine,
    wasm: &[u8],
    compile: impl FnOnce() -> wasmtime::Result<Module>,
) -> wasmtime::Result<Module> {
    let Some(dir) = dir.filter(|_| wasm.len() >= MIN_CACHED_WASM_BYTES) else {
        return compile();
    };
    let path = dir.join(format!("{}.cwasm", hex::encode(Sha256::digest(wasm))));
    // SAFETY: files in the cache are only ever written whole by `store`, from
    // `Module::serialize` (wasmtime checks the file's version and engine settings itself).
    if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
        return Ok(module);
    }
    let module = compile()?;
    store(dir, &path, &module);
    Ok(module)
}

fn store(dir: &Path, path: &Path, module: &Module) {
    let Ok(bytes) = module.serialize() else {
        return;
    };
    let partial = path.with_extension(format!("{}.partial", std::process::id()));
    let stored = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&partial, bytes))
        .and_then(|()| std::fs::rename(&partial, path));
    if stored.is_err() {
        let _ = std::fs::remove_file(&partial);
        return;
    }
    remove_oldest_beyond(dir, MAX_CACHED_MODULES);
}

/// Removes the least recently written `.cwasm` files of `dir` until `keep` are left.
fn remove_oldest_beyond(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut stored: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if stored.len() <= keep {
        return;
    }
    stored.sort();
    for (_, path) in &stored[..stored.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::module::engine;

    /// A module above the size threshold: a function and a 70,000-byte data segment.
    fn large_module(answer: i32) -> Vec<u8> {
        let data = "a".repeat(70_000);
        wat::parse_str(format!(
            r#"(module (memory 2) (func (export "answer") (result i32) i32.const {answer})
                (data (i32.const 0) "{data}"))"#
        ))
        .unwrap()
    }

    fn empty_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ic-sim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn answer(module: &Module) -> i32 {
        let mut store = wasmtime::Store::new(engine(), ());
        store.set_fuel(u64::MAX).unwrap();
        let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        answer.call(&mut store, ()).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_module_compiled_once_is_loaded_from_the_file_by_the_next_process() {
        let dir = empty_dir("cache-load");
        let wasm = large_module(7);
        let compiled =
            load_or_compile(Some(&dir), engine(), &wasm, || Module::new(engine(), &wasm)).unwrap();
        assert_eq!(answer(&compiled), 7);
        let key = format!("{}.cwasm", hex::encode(Sha256::digest(&wasm)));
        assert_eq!(files(&dir), [key]);
        let loaded = load_or_compile(Some(&dir), engine(), &wasm, || {
            panic!("a stored module is not compiled again")
        })
        .unwrap();
        assert_eq!(answer(&loaded), 7);
        // Other bytes have another key: the stored module is not taken for them.
        let other = large_module(8);
        let compiled_other = load_or_compile(Some(&dir), engine(), &other, || {
            Module::new(engine(), &other)
        })
        .unwrap();
        assert_eq!(answer(&compiled_other), 8);
        assert_eq!(files(&dir).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_compiled_again_and_replaced() {
        let dir = empty_dir("cache-damaged");
        let wasm = large_module(9);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.cwasm", hex::encode(Sha256::digest(&wasm))));
        std::fs::write(&path, b"not a compiled module").unwrap();
        let mut compiled = false;
        let module = load_or_compile(Some(&dir), engine(), &wasm, || {
            compiled = true;
            Module::new(engine(), &wasm)
        })
        .unwrap();
        assert!(compiled);
        assert_eq!(answer(&module), 9);
        let loaded = load_or_compile(Some(&dir), engine(), &wasm, || {
            panic!("the replaced file is loaded")
        })
        .unwrap();
        assert_eq!(answer(&loaded), 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_most_recently_written_files_are_kept() {
        let dir = empty_dir("cache-prune");
        std::fs::create_dir_all(&dir).unwrap();
        let now = std::time::SystemTime::now();
        for age in 0..5u64 {
            let file = std::fs::File::create(dir.join(format!("{age}.cwasm"))).unwrap();
            file.set_modified(now - std::time::Duration::from_secs(60 * age))
                .unwrap();
        }
        std::fs::write(dir.join("notes.txt"), b"not a module").unwrap();
        remove_oldest_beyond(&dir, 3);
        assert_eq!(files(&dir), ["0.cwasm", "1.cwasm", "2.cwasm", "notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn small_modules_and_a_cache_turned_off_write_nothing() {
        let dir = empty_dir("cache-small");
        let small = wat::parse_str(r#"(module (func (export "answer") (result i32) i32.const 1))"#)
            .unwrap();
        let module = load_or_compile(Some(&dir), engine(), &small, || {
            Module::new(engine(), &small)
        })
        .unwrap();
        assert_eq!(answer(&module), 1);
        assert!(!dir.exists());
        let large = large_module(2);
        load_or_compile(None, engine(), &large, || Module::new(engine(), &large)).unwrap();
        assert!(!dir.exists());
    }
}
