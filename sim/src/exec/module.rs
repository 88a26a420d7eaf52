//! Compiling a canister module: gzip, validation against the IC's module requirements, a rewrite
//! that makes the instance's hidden state reachable, and the process-wide compile cache.
//!
//! Spec: IC interface specification, "Canister interface (System API)", "WebAssembly module
//! requirements" and "Entry points"; resource limits for module sizes.
//!
//! The rewrite: the IC must be able to roll back and snapshot every mutable global (Rust's
//! `__stack_pointer` is one, and it is not exported), and must call table entries (callbacks) and
//! read the memory even when the module does not export them. So every mutable global, memory 0
//! and table 0 are additionally exported under reserved names, and the start function is exported
//! instead of being run by instantiation, so that it runs under the `(start)` mode with counted
//! instructions, and so that re-instantiating for a rollback or a snapshot does not run it again.

use super::imports::{signature, Ty, IC0_IMPORTS};
use super::module_disk_cache;
use super::system_api::{linker, HostState};
use super::{CompiledModule, ModuleInner, SystemEntry};
use crate::types::limits;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};
use wasmtime::{Config, Engine, InstancePre, Module, OptLevel};

/// Prefix of the exports the rewrite adds; a module may not use it itself.
const RESERVED_PREFIX: &str = "__ic_sim_";
pub(super) const MEMORY_EXPORT: &str = "__ic_sim_memory";
pub(super) const TABLE_EXPORT: &str = "__ic_sim_table";
pub(super) const START_EXPORT: &str = "__ic_sim_start";

pub(super) fn global_export(index: u32) -> String {
    format!("{RESERVED_PREFIX}global_{index}")
}

const MAX_FUNCTIONS: usize = 50_000;
const MAX_GLOBALS: usize = 1_000;
const MAX_EXPORTED_METHODS: usize = 1_000;
const MAX_EXPORTED_METHOD_NAMES_BYTES: usize = 20_000;
const MAX_CUSTOM_SECTIONS: usize = 16;
const MAX_CUSTOM_SECTIONS_BYTES: usize = 1024 * 1024;

/// The one engine of the process. Fuel counts instructions; NaN canonicalization and deterministic
/// relaxed SIMD keep execution deterministic, as on the IC.
pub(super) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            // `Speed` generates faster code for instruction-heavy canisters; compiled modules are
            // kept on disk (`module_disk_cache`), so few runs pay for compiling.
            .cranelift_opt_level(OptLevel::Speed)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .wasm_memory64(true)
            .wasm_multi_memory(false)
            // The IC supports neither GC nor exceptions; reference types (funcref tables) stay.
            .wasm_gc(false)
            .wasm_function_references(false)
            .wasm_exceptions(false)
            .gc_support(false)
            // Memories are plain anonymous memory: the heap is loaded over the module's data
            // anyway, and the write watch (`written`) needs anonymous pages.
            .memory_init_cow(false);
        Engine::new(&config).expect("the wasmtime configuration is valid")
    })
}

/// What compiling found out about a module, besides the wasmtime module itself.
pub(super) struct ModuleFacts {
    pub updates: BTreeSet<String>,
    pub queries: BTreeSet<String>,
    pub composite_queries: BTreeSet<String>,
    pub entries: Vec<SystemEntry>,
    pub metadata: BTreeMap<String, (bool, Vec<u8>)>,
    /// Indices of the mutable globals (all are exported by the rewrite), in index order.
    pub mutable_globals: Vec<u32>,
    /// Their types.
    pub mutable_global_types: Vec<super::GlobalType>,
    pub has_memory: bool,
    /// The memory is 64-bit: the System API's `I` is `i64` (spec: "WebAssembly module
    /// requirements").
    pub wasm64: bool,
    pub has_table: bool,
    pub has_start: bool,
}

type CacheCell = Arc<OnceLock<Result<CompiledModule, String>>>;

/// Compiles `wasm` once per process per distinct bytes (keyed by `module_hash`); concurrent
/// callers with the same bytes wait for the one compilation.
pub(super) fn compile_cached(wasm: &[u8]) -> Result<CompiledModule, String> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], CacheCell>>> = OnceLock::new();
    let module_hash: [u8; 32] = Sha256::digest(wasm).into();
    let cell = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("compile cache lock")
        .entry(module_hash)
        .or_default()
        .clone();
    cell.get_or_init(|| compile(wasm, module_hash)).clone()
}

fn compile(given: &[u8], module_hash: [u8; 32]) -> Result<CompiledModule, String> {
    if given.len() > limits::MAX_WASM_MODULE_SIZE {
        return Err(format!(
            "Wasm module size {} exceeds the maximum of {} bytes",
            given.len(),
            limits::MAX_WASM_MODULE_SIZE
        ));
    }
    let inflated;
    let wasm = if given.starts_with(&[0x1f, 0x8b, 0x08]) {
        inflated = gunzip(given)?;
        &inflated[..]
    } else {
        given
    };
    if !wasm.starts_with(b"\0asm") {
        return Err(
            "Wasm module is not valid: it is neither a Wasm binary (\\0asm) nor gzip (1f 8b 08)"
                .into(),
        );
    }
    let (facts, rewritten) =
        validate_and_rewrite(wasm).map_err(|e| format!("Wasm module is not valid: {e}"))?;
    let wasm64 = facts.wasm64;
    let cache_dir = module_disk_cache::dir();
    let module =
        module_disk_cache::load_or_compile(cache_dir.as_deref(), engine(), &rewritten, || {
            Module::new(engine(), &rewritten)
        })
        .map_err(|e| format!("Wasm module is not valid: {e:#}"))?;
    let instance_pre: InstancePre<HostState> = linker(wasm64)
        .instantiate_pre(&module)
        .map_err(|e| format!("Wasm module is not valid: {e:#}"))?;
    Ok(CompiledModule {
        inner: Arc::new(ModuleInner {
            module_hash,
            wasm_binary_size: given.len(),
            wasm_binary: given.to_vec(),
            instance_pre,
            facts,
        }),
    })
}

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, String> {
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(limits::MAX_WASM_MODULE_SIZE as u64 + 1)
        .read_to_end(&mut wasm)
        .map_err(|e| {
            format!("Wasm module is not valid: failed to decompress the gzip module: {e}")
        })?;
    if wasm.len() > limits::MAX_WASM_MODULE_SIZE {
        return Err(format!(
            "Wasm module is not valid: the decompressed module exceeds the maximum of {} bytes",
            limits::MAX_WASM_MODULE_SIZE
        ));
    }
    Ok(wasm)
}

fn ty_of(val: &ValType) -> Option<Ty> {
    match val {
        ValType::I32 => Some(Ty::I32),
        ValType::I64 => Some(Ty::I64),
        _ => None,
    }
}

fn describe_func_type(ty: &wasmparser::FuncType) -> String {
    let list = |tys: &[ValType]| {
        tys.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

/// An import must be a function of module `ic0` listed in the import table with its signature
/// for the module's memory width (`I` is `i64` in a wasm64 module, and the legacy imports exist
/// for wasm32 only); returns its type index.
fn check_import(
    import: &wasmparser::Import<'_>,
    types: &[Option<wasmparser::FuncType>],
    wasm64: bool,
) -> Result<u32, String> {
    let invalid = "Wasm module has an invalid import section.";
    let TypeRef::Func(type_index) = import.ty else {
        return Err(format!(
            "{invalid} Module imports {:?} '{}' from '{}'; only functions of module 'ic0' may be imported.",
            import.ty, import.name, import.module
        ));
    };
    let expected = IC0_IMPORTS
        .iter()
        .find(|i| import.module == "ic0" && i.name == import.name && !(wasm64 && i.wasm32_only))
        .ok_or_else(|| {
            format!(
                "{invalid} Module imports function '{}' from '{}' that is not exported by the runtime.",
                import.name, import.module
            )
        })?;
    let actual = types
        .get(type_index as usize)
        .cloned()
        .flatten()
        .ok_or_else(|| {
            format!(
                "{invalid} Import '{}' has an invalid type index.",
                import.name
            )
        })?;
    let same = |actual: &[ValType], expected: &[Ty]| {
        actual
            .iter()
            .map(ty_of)
            .eq(expected.iter().map(|t| Some(t.resolve(wasm64))))
    };
    if !same(actual.params(), expected.params) || !same(actual.results(), expected.results) {
        return Err(format!(
            "{invalid} Module imports function 'ic0.{}' with the wrong signature {}; the runtime exports it as {}.",
            import.name,
            describe_func_type(&actual),
            signature(expected.params, expected.results, wasm64)
        ));
    }
    Ok(type_index)
}

/// Checks the IC's module requirements and returns the facts plus the rewritten module (see the
/// module comment).
fn validate_and_rewrite(wasm: &[u8]) -> Result<(ModuleFacts, Vec<u8>), String> {
    let mut types: Vec<Option<wasmparser::FuncType>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    // Imports are checked once the memory's width is known (the memory section follows them).
    let mut imports: Vec<(String, String, TypeRef)> = Vec::new();
    let mut wasm64 = false;
    let mut memories = 0usize;
    let mut tables = 0usize;
    let mut globals = 0usize;
    let mut mutable_globals = Vec::new();
    let mut mutable_global_types = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut start = None;
    let mut custom_sections: Vec<(String, Vec<u8>)> = Vec::new();
    // Raw sections in order, `None` standing for the export section (rebuilt below).
    let mut sections: Vec<Option<(u8, std::ops::Range<usize>)>> = Vec::new();
    let mut saw_export_section = false;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        match &payload {
            Payload::TypeSection(reader) => {
                for rec_group in reader.clone() {
                    for sub in rec_group.map_err(|e| e.to_string())?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f.clone()),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if let TypeRef::Memory(memory) = import.ty {
                        wasm64 |= memory.memory64;
                    }
                    imports.push((
                        import.module.to_string(),
                        import.name.to_string(),
                        import.ty,
                    ));
                }
            }
            Payload::FunctionSection(reader) => {
                for type_index in reader.clone() {
                    func_types.push(type_index.map_err(|e| e.to_string())?);
                }
            }
            Payload::TableSection(reader) => tables += reader.count() as usize,
            Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    wasm64 |= memory.map_err(|e| e.to_string())?.memory64;
                    memories += 1;
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader.clone() {
                    let global = global.map_err(|e| e.to_string())?;
                    if global.ty.mutable {
                        if !matches!(
                            global.ty.content_type,
                            ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
                        ) {
                            return Err(format!(
                                "Wasm module has a mutable global of type {} that the simulator cannot snapshot.",
                                global.ty.content_type
                            ));
                        }
                        mutable_globals.push(globals as u32);
                        mutable_global_types.push(match global.ty.content_type {
                            ValType::I32 => super::GlobalType::I32,
                            ValType::I64 => super::GlobalType::I64,
                            ValType::F32 => super::GlobalType::F32,
                            _ => super::GlobalType::F64,
                        });
                    }
                    globals += 1;
                }
            }
            Payload::ExportSection(reader) => {
                saw_export_section = true;
                for export in reader.clone() {
                    let export = export.map_err(|e| e.to_string())?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            Payload::StartSection { func, .. } => start = Some(*func),
            Payload::CustomSection(reader) => {
                custom_sections.push((reader.name().to_string(), reader.data().to_vec()));
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            match id {
                // Export: rebuilt. Start: replaced by an export.
                7 => sections.push(None),
                8 => {}
                _ => {
                    // Without an export section, the new one goes right before the first section
                    // that must follow it (start, element, code, data, data count).
                    if !saw_export_section && matches!(id, 9..=12) {
                        saw_export_section = true;
                        sections.push(None);
                    }
                    sections.push(Some((id, range)));
                }
            }
        }
    }
    if !saw_export_section {
        sections.push(None);
    }

    // Imported functions come first in the function index space.
    let mut imported = Vec::with_capacity(imports.len());
    for (module, name, ty) in &imports {
        let import = wasmparser::Import {
            module,
            name,
            ty: *ty,
        };
        imported.push(check_import(&import, &types, wasm64)?);
    }
    imported.append(&mut func_types);
    let func_types = imported;

    if memories > 1 {
        return Err(format!(
            "Wasm module has an invalid memory section: it declares {memories} memories, at most one is allowed."
        ));
    }
    if func_types.len() > MAX_FUNCTIONS {
        return Err(format!(
            "Wasm module defines {} functions which exceeds the maximum number allowed {MAX_FUNCTIONS}.",
            func_types.len()
        ));
    }
    if globals > MAX_GLOBALS {
        return Err(format!(
            "Wasm module defines {globals} globals which exceeds the maximum number allowed {MAX_GLOBALS}."
        ));
    }

    let mut facts = ModuleFacts {
        updates: BTreeSet::new(),
        queries: BTreeSet::new(),
        composite_queries: BTreeSet::new(),
        entries: Vec::new(),
        metadata: BTreeMap::new(),
        mutable_globals,
        mutable_global_types,
        has_memory: memories == 1,
        wasm64,
        has_table: tables >= 1,
        has_start: start.is_some(),
    };
    check_exports(&exports, &types, &func_types, &mut facts)?;
    facts.metadata = parse_metadata(&custom_sections)?;

    let mut export_section = wasm_encoder::ExportSection::new();
    for (name, kind, index) in &exports {
        let kind = match kind {
            ExternalKind::Func => wasm_encoder::ExportKind::Func,
            ExternalKind::Table => wasm_encoder::ExportKind::Table,
            ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
            ExternalKind::Global => wasm_encoder::ExportKind::Global,
            ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
            ExternalKind::FuncExact => {
                return Err(format!("export '{name}' has an unsupported kind"))
            }
        };
        export_section.export(name, kind, *index);
    }
    if facts.has_memory {
        export_section.export(MEMORY_EXPORT, wasm_encoder::ExportKind::Memory, 0);
    }
    if facts.has_table {
        export_section.export(TABLE_EXPORT, wasm_encoder::ExportKind::Table, 0);
    }
    for &index in &facts.mutable_globals {
        export_section.export(
            &global_export(index),
            wasm_encoder::ExportKind::Global,
            index,
        );
    }
    if let Some(start) = start {
        export_section.export(START_EXPORT, wasm_encoder::ExportKind::Func, start);
    }
    let mut module = wasm_encoder::Module::new();
    for section in &sections {
        match section {
            Some((id, range)) => module.section(&wasm_encoder::RawSection {
                id: *id,
                data: &wasm[range.clone()],
            }),
            None => module.section(&export_section),
        };
    }
    Ok((facts, module.finish()))
}

/// Exports: only the IC's entry points may use the `canister_` prefix, each method name once, all
/// of type `() -> ()`.
fn check_exports(
    exports: &[(String, ExternalKind, u32)],
    types: &[Option<wasmparser::FuncType>],
    func_types: &[u32],
    facts: &mut ModuleFacts,
) -> Result<(), String> {
    let mut method_names_bytes = 0;
    for (name, kind, index) in exports {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(format!(
                "Wasm module exports '{name}', a name reserved by the simulator."
            ));
        }
        if !name.starts_with("canister_") {
            continue;
        }
        let is_unit_function = *kind == ExternalKind::Func
            && func_types
                .get(*index as usize)
                .and_then(|t| types.get(*t as usize).cloned().flatten())
                .is_some_and(|t| t.params().is_empty() && t.results().is_empty());
        if !is_unit_function {
            return Err(format!(
                "Wasm module has an invalid export section: the entry point '{name}' must be a function of type () -> ()."
            ));
        }
        let system_entry = match name.as_str() {
            "canister_init" => Some(SystemEntry::Init),
            "canister_pre_upgrade" => Some(SystemEntry::PreUpgrade),
            "canister_post_upgrade" => Some(SystemEntry::PostUpgrade),
            "canister_inspect_message" => Some(SystemEntry::InspectMessage),
            "canister_heartbeat" => Some(SystemEntry::Heartbeat),
            "canister_global_timer" => Some(SystemEntry::GlobalTimer),
            "canister_on_low_wasm_memory" => Some(SystemEntry::OnLowWasmMemory),
            _ => None,
        };
        if let Some(entry) = system_entry {
            facts.entries.push(entry);
            continue;
        }
        let (set, method) = if let Some(method) = name.strip_prefix("canister_update ") {
            (&mut facts.updates, method)
        } else if let Some(method) = name.strip_prefix("canister_query ") {
            (&mut facts.queries, method)
        } else if let Some(method) = name.strip_prefix("canister_composite_query ") {
            (&mut facts.composite_queries, method)
        } else {
            return Err(format!(
                "Wasm module has an invalid export section: exporting a function named '{name}' is not allowed; the prefix 'canister_' is reserved for the IC's entry points."
            ));
        };
        method_names_bytes += method.len();
        set.insert(method.to_string());
    }
    let methods = facts.updates.len() + facts.queries.len() + facts.composite_queries.len();
    let distinct: BTreeSet<&String> = facts
        .updates
        .iter()
        .chain(&facts.queries)
        .chain(&facts.composite_queries)
        .collect();
    if distinct.len() < methods {
        let duplicate = facts
            .updates
            .iter()
            .find(|m| facts.queries.contains(*m) || facts.composite_queries.contains(*m))
            .or_else(|| {
                facts
                    .queries
                    .iter()
                    .find(|m| facts.composite_queries.contains(*m))
            })
            .expect("a name is in two sets");
        return Err(format!(
            "Wasm module has an invalid export section: duplicate method '{duplicate}' exported multiple times with different call types: update, query, or composite_query."
        ));
    }
    if methods > MAX_EXPORTED_METHODS {
        return Err(format!(
            "Wasm module exports {methods} methods which exceeds the maximum number allowed {MAX_EXPORTED_METHODS}."
        ));
    }
    if method_names_bytes > MAX_EXPORTED_METHOD_NAMES_BYTES {
        return Err(format!(
            "Wasm module's exported method names are {method_names_bytes} bytes in total which exceeds the maximum allowed {MAX_EXPORTED_METHOD_NAMES_BYTES}."
        ));
    }
    Ok(())
}

/// `icp:public <name>` / `icp:private <name>` custom sections; any other `icp:` section is invalid.
fn parse_metadata(
    custom_sections: &[(String, Vec<u8>)],
) -> Result<BTreeMap<String, (bool, Vec<u8>)>, String> {
    let mut metadata = BTreeMap::new();
    let mut total = 0;
    for (section, data) in custom_sections {
        let Some(rest) = section.strip_prefix("icp:") else {
            continue;
        };
        let (is_public, name) = if let Some(name) = rest.strip_prefix("public ") {
            (true, name)
        } else if let Some(name) = rest.strip_prefix("private ") {
            (false, name)
        } else {
            return Err(format!(
                "Invalid custom section: custom section named '{section}' has no public/private scope defined."
            ));
        };
        if metadata
            .insert(name.to_string(), (is_public, data.clone()))
            .is_some()
        {
            return Err(format!(
                "Invalid custom section: custom section named '{name}' is declared more than once."
            ));
        }
        total += name.len() + data.len();
    }
    if metadata.len() > MAX_CUSTOM_SECTIONS {
        return Err(format!(
            "Invalid custom sections: the module declares {} 'icp:' custom sections, at most {MAX_CUSTOM_SECTIONS} are allowed.",
            metadata.len()
        ));
    }
    if total > MAX_CUSTOM_SECTIONS_BYTES {
        return Err(format!(
            "Invalid custom sections: total size {total} exceeds the maximum allowed {MAX_CUSTOM_SECTIONS_BYTES} bytes."
        ));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn same_bytes_compile_once() {
        let first = compile_cached(MODULE).unwrap();
        let second = compile_cached(MODULE).unwrap();
        assert!(Arc::ptr_eq(&first.inner, &second.inner));
    }

    #[test]
    fn rewrite_exports_hidden_state_and_removes_start() {
        let wasm = b"\0asm\x01\0\0\0\
            \x01\x04\x01\x60\0\0\
            \x03\x02\x01\0\
            \x04\x04\x01\x70\0\x01\
            \x05\x03\x01\0\x01\
            \x06\x06\x01\x7f\x01\x41\x05\x0b\
            \x08\x01\0\
            \x0a\x04\x01\x02\0\x0b";
        let (facts, rewritten) = validate_and_rewrite(wasm).unwrap();
        assert_eq!(facts.mutable_globals, vec![0]);
        assert!(facts.has_memory && facts.has_table && facts.has_start);
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(&rewritten) {
            match payload.unwrap() {
                Payload::ExportSection(reader) => {
                    exports.extend(reader.into_iter().map(|e| e.unwrap().name.to_string()))
                }
                Payload::StartSection { .. } => panic!("the start section must be removed"),
                _ => {}
            }
        }
        assert_eq!(
            exports,
            [
                MEMORY_EXPORT,
                TABLE_EXPORT,
                "__ic_sim_global_0",
                START_EXPORT
            ]
        );
        Module::validate(engine(), &rewritten).unwrap();
    }
}
