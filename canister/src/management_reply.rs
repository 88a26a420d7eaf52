//! Reads the fields the deployer needs from the management canister's replies of a child's
//! pipeline: `canister_status` and `take_canister_snapshot`; and tells an empty reply at a glance.
//!
//! Why it exists: decoding the whole `canister_status` reply with the `candid` crate costs about
//! 490,000 Wasm instructions per child (type table construction and the subtype checker), a
//! quarter of the per-child budget of a rollout; a `take_canister_snapshot` reply about 41,000
//! (53,000 instructions for its callback, against 12,000 for a `stop_canister` one: measured on
//! the 1,000-child bench). The deployer only needs `status`, `module_hash` and what tells
//! whether the child can pay for its upgrade (`cycles`, `idle_cycles_burned_per_day`,
//! `settings.freezing_threshold`), and a snapshot's `id`, so this module walks the reply once
//! with no type machinery: it reads the type table, finds those fields by their field hashes,
//! and skips every other field value by walking it according to its type.
//!
//! It follows the Candid specification (dfinity/candid `spec/Candid.md`, "Binary Format" and
//! "Deserialisation"): magic `DIDL`, type table, argument types, values. It never panics on any
//! input: every length is checked against the remaining bytes before it is used, nesting is capped
//! at [`MAX_DEPTH`], and the number of values walked is capped in proportion to the reply size
//! (zero-byte values such as `null` and empty records could otherwise make a tiny reply expensive).

use core::fmt;
use core::ops::Range;

/// Run status of a canister as `canister_status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    Running,
    Stopping,
    Stopped,
}

/// The fields of a `canister_status` reply the deployer reads of a child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildStatus {
    pub status: StatusCode,
    /// SHA-256 of the installed module; `None` for an empty canister or a reply without the field.
    pub module_hash: Option<Vec<u8>>,
    /// `None` unless the reply holds all three fields, each a `nat`.
    pub funds: Option<StatusFunds>,
}

/// What a `canister_status` reply says about the canister's cycles; values past `u128`
/// saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusFunds {
    pub cycles: u128,
    pub idle_cycles_burned_per_day: u128,
    /// `settings.freezing_threshold`, in seconds.
    pub freezing_threshold: u128,
}

/// Why a reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The reply does not start with the Candid magic `DIDL`.
    NotCandid,
    /// The reply ends before the type table or a value does.
    Truncated,
    /// The reply breaks the Candid binary format or has an unexpected shape.
    Malformed(&'static str),
    /// The reply record has no `status` field.
    MissingStatus,
    /// The `take_canister_snapshot` reply record has no `id` field.
    MissingSnapshotId,
    /// `status` holds a variant case other than running, stopping or stopped (its field hash).
    UnknownStatus(u32),
    /// The reply nests deeper than [`MAX_DEPTH`] or holds too many values for its size.
    LimitExceeded(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCandid => f.write_str("the reply is not Candid (no DIDL magic)"),
            Self::Truncated => f.write_str("the reply is truncated"),
            Self::Malformed(why) => write!(f, "malformed reply: {why}"),
            Self::MissingStatus => f.write_str("the reply has no status field"),
            Self::MissingSnapshotId => f.write_str("the reply has no snapshot id field"),
            Self::UnknownStatus(hash) => {
                write!(
                    f,
                    "the reply has an unknown status case (field hash {hash})"
                )
            }
            Self::LimitExceeded(what) => write!(f, "the reply exceeds the {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Deepest nesting of values the reader walks; real replies nest four levels.
pub const MAX_DEPTH: u32 = 64;

/// Candid field hash of a name: `h = h * 223 + byte` over the UTF-8 bytes, modulo 2^32.
const fn idl_hash(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        hash = hash.wrapping_mul(223).wrapping_add(bytes[i] as u32);
        i += 1;
    }
    hash
}

const STATUS: u32 = idl_hash("status");
const MODULE_HASH: u32 = idl_hash("module_hash");
const CYCLES: u32 = idl_hash("cycles");
const IDLE_CYCLES_BURNED_PER_DAY: u32 = idl_hash("idle_cycles_burned_per_day");
const SETTINGS: u32 = idl_hash("settings");
const FREEZING_THRESHOLD: u32 = idl_hash("freezing_threshold");
const ID: u32 = idl_hash("id");
const STATUS_CASES: [(u32, StatusCode); 3] = [
    (idl_hash("running"), StatusCode::Running),
    (idl_hash("stopping"), StatusCode::Stopping),
    (idl_hash("stopped"), StatusCode::Stopped),
];

// Primitive type opcodes (SLEB128, negative); non-negative type references index the table.
const NULL: i64 = -1;
const BOOL: i64 = -2;
const NAT: i64 = -3;
const INT: i64 = -4;
const NAT8: i64 = -5;
const NAT16: i64 = -6;
const NAT32: i64 = -7;
const NAT64: i64 = -8;
const INT8: i64 = -9;
const INT16: i64 = -10;
const INT32: i64 = -11;
const INT64: i64 = -12;
const FLOAT32: i64 = -13;
const FLOAT64: i64 = -14;
const TEXT: i64 = -15;
const RESERVED: i64 = -16;
const EMPTY: i64 = -17;
const PRINCIPAL: i64 = -24;
// Constructed type opcodes, only valid as type table entries.
const OPT: i64 = -18;
const VEC: i64 = -19;
const RECORD: i64 = -20;
const VARIANT: i64 = -21;
const FUNC: i64 = -22;
const SERVICE: i64 = -23;

/// A cursor over the reply bytes; every read fails with `Truncated` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Fails unless every byte was read.
    fn end(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed("trailing bytes"))
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        if len > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    /// A LEB128 number that must fit in 64 bits (lengths, counts, hashes, indices).
    fn leb(&mut self) -> Result<u64, DecodeError> {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = self.byte()?;
            // The tenth byte holds bit 63 only; anything more (or a continuation) overflows.
            if shift == 63 && byte > 1 {
                return Err(DecodeError::Malformed("LEB128 number exceeds 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A SLEB128 number that must fit in 64 bits (type opcodes and references).
    fn sleb(&mut self) -> Result<i64, DecodeError> {
        let (mut value, mut shift) = (0i64, 0);
        loop {
            let byte = self.byte()?;
            // The tenth byte holds bit 63 and its sign extension only.
            if shift == 63 && byte != 0 && byte != 0x7f {
                return Err(DecodeError::Malformed("SLEB128 number exceeds 64 bits"));
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A `nat` of any size, saturated to `u128`.
    fn nat(&mut self) -> Result<u128, DecodeError> {
        let (mut value, mut shift) = (0u128, 0u32);
        loop {
            let byte = self.byte()?;
            let bits = u128::from(byte & 0x7f);
            if shift < 128 {
                let shifted = bits << shift;
                value = if shifted >> shift == bits {
                    value | shifted
                } else {
                    u128::MAX
                };
            } else if bits != 0 {
                value = u128::MAX;
            }
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift = shift.saturating_add(7);
        }
    }

    /// A `nat` or `int` of any size: LEB128 bytes up to the one without a continuation bit.
    fn skip_big_number(&mut self) -> Result<(), DecodeError> {
        while self.byte()? & 0x80 != 0 {}
        Ok(())
    }

    /// A LEB128 length followed by that many bytes.
    fn blob(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.leb()?;
        self.take(len)
    }

    /// A LEB128 length followed by that many bytes of UTF-8.
    fn text(&mut self) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.blob()?).map_err(|_| DecodeError::Malformed("text is not UTF-8"))
    }

    /// A type reference: a primitive type opcode or an index below the type table length.
    fn type_reference(&mut self, table_len: u64) -> Result<i64, DecodeError> {
        let reference = self.sleb()?;
        let is_index = u64::try_from(reference).is_ok_and(|index| index < table_len);
        if is_index || (EMPTY..=NULL).contains(&reference) || reference == PRINCIPAL {
            Ok(reference)
        } else {
            Err(DecodeError::Malformed("type reference is out of range"))
        }
    }

    /// A one-byte flag: bool values and the tags of opt, principal, service and func values.
    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed("flag byte is not 0 or 1")),
        }
    }

    /// A principal or service reference: flag 0 (opaque, no bytes) or flag 1 and the id bytes.
    fn skip_reference(&mut self) -> Result<(), DecodeError> {
        if self.flag()? {
            self.blob()?;
        }
        Ok(())
    }
}

/// A type table entry; record and variant fields live in `TypeTable::fields`.
enum TypeEntry {
    Opt(i64),
    Vec(i64),
    Record(Range<usize>),
    Variant(Range<usize>),
    Func,
    Service,
    /// An opcode below -24 reserved for future types; its values carry their own length.
    Future,
}

struct TypeTable {
    entries: Vec<TypeEntry>,
    /// `(field hash, field type)` of every record and variant, each run sorted by hash.
    fields: Vec<(u32, i64)>,
}

impl TypeTable {
    fn read(reader: &mut Reader) -> Result<Self, DecodeError> {
        let len = reader.leb()?;
        // Every entry takes at least one byte, so a longer table cannot fit.
        if len > reader.bytes.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut table = Self {
            entries: Vec::new(),
            fields: Vec::new(),
        };
        for _ in 0..len {
            let entry = match reader.sleb()? {
                OPT => TypeEntry::Opt(reader.type_reference(len)?),
                VEC => TypeEntry::Vec(reader.type_reference(len)?),
                RECORD => TypeEntry::Record(table.read_fields(reader, len)?),
                VARIANT => TypeEntry::Variant(table.read_fields(reader, len)?),
                FUNC => {
                    for _ in 0..2 {
                        for _ in 0..reader.leb()? {
                            reader.type_reference(len)?; // argument types, then result types
                        }
                    }
                    for _ in 0..reader.leb()? {
                        if !(1..=3).contains(&reader.byte()?) {
                            return Err(DecodeError::Malformed("unknown function annotation"));
                        }
                    }
                    TypeEntry::Func
                }
                SERVICE => {
                    for _ in 0..reader.leb()? {
                        reader.text()?; // method name
                        reader.type_reference(len)?;
                    }
                    TypeEntry::Service
                }
                opcode if opcode < PRINCIPAL => {
                    reader.blob()?;
                    TypeEntry::Future
                }
                _ => {
                    return Err(DecodeError::Malformed(
                        "type table entry is not a constructed type",
                    ))
                }
            };
            table.entries.push(entry);
        }
        Ok(table)
    }

    fn read_fields(&mut self, reader: &mut Reader, len: u64) -> Result<Range<usize>, DecodeError> {
        let start = self.fields.len();
        let mut previous: Option<u32> = None;
        for _ in 0..reader.leb()? {
            let hash = u32::try_from(reader.leb()?)
                .map_err(|_| DecodeError::Malformed("field hash exceeds 32 bits"))?;
            if previous.is_some_and(|previous| previous >= hash) {
                return Err(DecodeError::Malformed("field hashes not increasing"));
            }
            previous = Some(hash);
            let field_type = reader.type_reference(len)?;
            self.fields.push((hash, field_type));
        }
        Ok(start..self.fields.len())
    }

    fn entry(&self, reference: i64) -> Option<&TypeEntry> {
        usize::try_from(reference)
            .ok()
            .and_then(|index| self.entries.get(index))
    }
}

/// Walks values of any type without keeping them, within the depth and work limits.
struct Skipper<'t> {
    table: &'t TypeTable,
    budget: usize,
}

impl<'t> Skipper<'t> {
    /// A skipper whose budget of values is in proportion to the reply's size.
    fn for_reply(table: &'t TypeTable, reply: &[u8]) -> Self {
        Self {
            table,
            budget: reply.len().saturating_mul(8).saturating_add(256),
        }
    }

    fn skip(&mut self, reader: &mut Reader, ty: i64, depth: u32) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::LimitExceeded("nesting depth limit"));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or(DecodeError::LimitExceeded("value count limit"))?;
        let width = match ty {
            NULL | RESERVED => 0,
            NAT8 | INT8 => 1,
            NAT16 | INT16 => 2,
            NAT32 | INT32 | FLOAT32 => 4,
            NAT64 | INT64 | FLOAT64 => 8,
            BOOL => return reader.flag().map(drop),
            NAT | INT => return reader.skip_big_number(),
            TEXT => return reader.text().map(drop),
            PRINCIPAL => return reader.skip_reference(),
            EMPTY => return Err(DecodeError::Malformed("a value of type empty")),
            _ => return self.skip_constructed(reader, ty, depth),
        };
        reader.take(width).map(drop)
    }

    fn skip_constructed(
        &mut self,
        reader: &mut Reader,
        ty: i64,
        depth: u32,
    ) -> Result<(), DecodeError> {
        let table = self.table;
        match table
            .entry(ty)
            .ok_or(DecodeError::Malformed("type reference is out of range"))?
        {
            TypeEntry::Opt(inner) if reader.flag()? => self.skip(reader, *inner, depth + 1),
            TypeEntry::Opt(_) => Ok(()),
            TypeEntry::Vec(NAT8) => reader.blob().map(drop),
            TypeEntry::Vec(inner) => {
                for _ in 0..reader.leb()? {
                    let before = reader.bytes.len();
                    self.skip(reader, *inner, depth + 1)?;
                    // An element that took no bytes has a zero-size type: the rest take none too.
                    if reader.bytes.len() == before {
                        break;
                    }
                }
                Ok(())
            }
            TypeEntry::Record(fields) => table.fields[fields.clone()]
                .iter()
                .try_for_each(|&(_, field_type)| self.skip(reader, field_type, depth + 1)),
            TypeEntry::Variant(fields) => {
                let (_, case_type) = variant_case(table, fields, reader)?;
                self.skip(reader, case_type, depth + 1)
            }
            // A func value is flag 1, its service reference and its method name (or flag 0).
            TypeEntry::Func if reader.flag()? => {
                reader.skip_reference()?;
                self.skip(reader, TEXT, depth + 1)
            }
            TypeEntry::Func => Ok(()),
            TypeEntry::Service => reader.skip_reference(),
            TypeEntry::Future => {
                let len = reader.leb()?;
                reader.leb()?; // count of out-of-band references, none on the IC
                reader.take(len).map(drop)
            }
        }
    }
}

/// Reads a variant value's case index and returns that case's `(hash, type)`.
fn variant_case(
    table: &TypeTable,
    fields: &Range<usize>,
    reader: &mut Reader,
) -> Result<(u32, i64), DecodeError> {
    let cases = &table.fields[fields.clone()];
    usize::try_from(reader.leb()?)
        .ok()
        .and_then(|index| cases.get(index).copied())
        .ok_or(DecodeError::Malformed("variant index is out of range"))
}

/// Extracts `status`, `module_hash` and the funds from a Candid-encoded `canister_status` reply.
///
/// The reply must hold exactly one value, a record. `status` must be a variant with at least the
/// cases running, stopping and stopped (matched by hash, in any position); `module_hash`, when
/// present, must be `opt blob`. `cycles`, `idle_cycles_burned_per_day` and
/// `settings.freezing_threshold` are read when they are `nat`s. Other fields may be of any type
/// and are skipped.
pub fn decode_child_status(reply: &[u8]) -> Result<ChildStatus, DecodeError> {
    let (mut reader, table, fields) = single_record(reply)?;
    let mut skipper = Skipper::for_reply(&table, reply);
    let (mut status, mut module_hash) = (None, None);
    let (mut cycles, mut idle_burn, mut freezing_threshold) = (None, None, None);
    for &(hash, field_type) in &table.fields[fields] {
        match (hash, table.entry(field_type)) {
            (STATUS, Some(TypeEntry::Variant(cases))) => {
                let all_cases = STATUS_CASES.iter().all(|(case, _)| {
                    table.fields[cases.clone()]
                        .iter()
                        .any(|(hash, _)| hash == case)
                });
                if !all_cases {
                    return Err(DecodeError::Malformed("status lacks a case"));
                }
                let (case, case_type) = variant_case(&table, cases, &mut reader)?;
                skipper.skip(&mut reader, case_type, 1)?;
                let code = STATUS_CASES.iter().find(|(hash, _)| *hash == case);
                status = Some(code.ok_or(DecodeError::UnknownStatus(case))?.1);
            }
            (STATUS, _) => return Err(DecodeError::Malformed("status is not a variant")),
            (MODULE_HASH, Some(TypeEntry::Opt(inner)))
                if matches!(table.entry(*inner), Some(TypeEntry::Vec(NAT8))) =>
            {
                if reader.flag()? {
                    module_hash = Some(reader.blob()?.to_vec());
                }
            }
            (MODULE_HASH, _) => return Err(DecodeError::Malformed("module_hash is not opt blob")),
            (CYCLES, _) if field_type == NAT => cycles = Some(reader.nat()?),
            (IDLE_CYCLES_BURNED_PER_DAY, _) if field_type == NAT => {
                idle_burn = Some(reader.nat()?);
            }
            (SETTINGS, Some(TypeEntry::Record(settings))) => {
                for &(hash, setting_type) in &table.fields[settings.clone()] {
                    if hash == FREEZING_THRESHOLD && setting_type == NAT {
                        freezing_threshold = Some(reader.nat()?);
                    } else {
                        skipper.skip(&mut reader, setting_type, 2)?;
                    }
                }
            }
            _ => skipper.skip(&mut reader, field_type, 1)?,
        }
    }
    reader.end()?;
    let status = status.ok_or(DecodeError::MissingStatus)?;
    let funds = match (cycles, idle_burn, freezing_threshold) {
        (Some(cycles), Some(idle_cycles_burned_per_day), Some(freezing_threshold)) => {
            Some(StatusFunds {
                cycles,
                idle_cycles_burned_per_day,
                freezing_threshold,
            })
        }
        _ => None,
    };
    Ok(ChildStatus {
        status,
        module_hash,
        funds,
    })
}

/// Extracts the snapshot's `id` from a Candid-encoded `take_canister_snapshot` reply: one record
/// whose `id` is a `blob`; its other fields (`taken_at_timestamp`, `total_size`, and any the IC
/// adds) may be of any type and are skipped.
pub fn decode_snapshot_id(reply: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (mut reader, table, fields) = single_record(reply)?;
    let mut skipper = Skipper::for_reply(&table, reply);
    let mut id = None;
    for &(hash, field_type) in &table.fields[fields] {
        match (hash, table.entry(field_type)) {
            (ID, Some(TypeEntry::Vec(NAT8))) => id = Some(reader.blob()?.to_vec()),
            (ID, _) => return Err(DecodeError::Malformed("the snapshot id is not a blob")),
            _ => skipper.skip(&mut reader, field_type, 1)?,
        }
    }
    reader.end()?;
    id.ok_or(DecodeError::MissingSnapshotId)
}

/// Whether a reply is the empty argument list (`()`, what `stop_canister`, `start_canister`
/// and the installs answer) in its canonical encoding: magic, no types, no values. Anything else
/// goes to the `candid` crate, which also accepts non-canonical forms and extra values; this
/// saves its decoder (a few thousand instructions) on three replies per child.
pub fn is_canonical_empty(reply: &[u8]) -> bool {
    reply == b"DIDL\x00\x00"
}

/// Reads the header of a reply that must hold exactly one value, a record: the reader at that
/// value, the type table, and the record's fields in the table.
fn single_record(reply: &[u8]) -> Result<(Reader<'_>, TypeTable, Range<usize>), DecodeError> {
    let mut reader = Reader {
        bytes: reply.strip_prefix(b"DIDL").ok_or(DecodeError::NotCandid)?,
    };
    let table = TypeTable::read(&mut reader)?;
    if reader.leb()? != 1 {
        return Err(DecodeError::Malformed("reply is not a single value"));
    }
    let reply_type = reader.type_reference(table.entries.len() as u64)?;
    let Some(TypeEntry::Record(fields)) = table.entry(reply_type) else {
        return Err(DecodeError::Malformed("reply is not a record"));
    };
    let fields = fields.clone();
    Ok((reader, table, fields))
}

#[cfg(test)]
mod tests;
