//! Struct field offsets from the binary's DWARF (gimli).
//!
//! Go's linker writes one `DW_TAG_structure_type` per struct, at the top level of a compile unit,
//! named with the full import path (`net/http.Request`, `runtime.g`), its fields as
//! `DW_TAG_member` children with a constant `DW_AT_data_member_location`. Since Go 1.11 the
//! sections are zlib-compressed (`SHF_COMPRESSED`, or `.zdebug_*` in older linkers); `object`
//! decompresses them.
//!
//! Only `.debug_info`, `.debug_abbrev` and the string sections are loaded, and the walk reads the
//! attributes of top-level structure DIEs only, skipping everything else, so a 30 MB binary costs
//! one decompression plus a linear scan.
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use gimli::{EndianSlice, RunTimeEndian, SectionId};
use object::{Object, ObjectSection};

use crate::{Error, FieldRef};

type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// Offsets of `wanted` fields read from the DWARF of the ELF file in `elf_bytes`.
///
/// For each wanted field the map holds:
/// - `Some(offset)`: the struct and the field exist;
/// - `None`: the struct exists but has no such field (a field of another Go version);
/// - no entry: the struct is not in the DWARF (its package is not linked in, or the binary has no
///   DWARF at all).
pub fn struct_offsets(
    elf_bytes: &[u8],
    wanted: &[FieldRef],
) -> Result<HashMap<FieldRef, Option<u64>>, Error> {
    let file = object::File::parse(elf_bytes)
        .map_err(|e| Error::Dwarf(format!("not a readable object file ({e})")))?;
    // Only the sections the walk touches; decompressing .debug_line/.debug_loc would double the cost.
    let load = |id: SectionId| -> Result<Cow<'_, [u8]>, Error> {
        let needed = matches!(
            id,
            SectionId::DebugInfo
                | SectionId::DebugAbbrev
                | SectionId::DebugStr
                | SectionId::DebugLineStr
        );
        match file.section_by_name(id.name()).filter(|_| needed) {
            Some(section) => section
                .uncompressed_data()
                .map_err(|e| Error::Dwarf(format!("cannot decompress {} ({e})", id.name()))),
            None => Ok(Cow::Borrowed(&[][..])),
        }
    };
    let sections = gimli::DwarfSections::load(load)?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
    walk(&dwarf, wanted).map_err(|e| Error::Dwarf(format!("malformed .debug_info ({e})")))
}

fn walk(
    dwarf: &gimli::Dwarf<R<'_>>,
    wanted: &[FieldRef],
) -> gimli::Result<HashMap<FieldRef, Option<u64>>> {
    let mut by_struct: HashMap<&str, Vec<FieldRef>> = HashMap::new();
    for f in wanted {
        by_struct.entry(f.strukt).or_default().push(*f);
    }
    let mut out = HashMap::new();
    let mut done: HashSet<&str> = HashSet::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        if done.len() == by_struct.len() {
            break;
        }
        // Not `dwarf.unit()`: that also parses the line program, which this walk never needs.
        let abbrevs = dwarf.abbreviations(&header)?;
        let mut entries = header.entries_raw(&abbrevs, None)?;
        while !entries.is_empty() {
            let depth = entries.next_depth();
            let Some(abbrev) = entries.read_abbreviation()? else {
                continue;
            };
            if depth != 1 || abbrev.tag() != gimli::DW_TAG_structure_type {
                entries.skip_attributes(abbrev.attributes())?;
                continue;
            }
            let mut name = None;
            for spec in abbrev.attributes() {
                let attr = entries.read_attribute(*spec)?;
                if attr.name() == gimli::DW_AT_name {
                    name = string(dwarf, attr.value());
                }
            }
            let Some(fields) = name
                .and_then(|n| std::str::from_utf8(n.slice()).ok())
                .and_then(|n| by_struct.get_key_value(n))
                .filter(|(n, _)| !done.contains(*n))
            else {
                continue;
            };
            if !abbrev.has_children() {
                continue;
            }
            let members = read_members(dwarf, &mut entries)?;
            for f in fields.1 {
                out.insert(*f, members.get(f.field).copied());
            }
            done.insert(fields.0);
            if done.len() == by_struct.len() {
                break;
            }
        }
    }
    Ok(out)
}

/// Reads the children of the structure DIE just read (the cursor is on its first child) and
/// returns member name → offset. Leaves the cursor after the struct's terminating null entry.
fn read_members<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    entries: &mut gimli::EntriesRaw<'_, R<'a>>,
) -> gimli::Result<HashMap<String, u64>> {
    let mut members = HashMap::new();
    let child_depth = entries.next_depth();
    while !entries.is_empty() && entries.next_depth() >= child_depth {
        let depth = entries.next_depth();
        let Some(abbrev) = entries.read_abbreviation()? else {
            continue;
        };
        if depth != child_depth || abbrev.tag() != gimli::DW_TAG_member {
            entries.skip_attributes(abbrev.attributes())?;
            continue;
        }
        let (mut name, mut offset) = (None, None);
        for spec in abbrev.attributes() {
            let attr = entries.read_attribute(*spec)?;
            match attr.name() {
                gimli::DW_AT_name => name = string(dwarf, attr.value()),
                // Go always writes a constant; a location expression would be a non-Go producer.
                gimli::DW_AT_data_member_location => offset = attr.udata_value(),
                _ => {}
            }
        }
        if let (Some(name), Some(offset)) = (name, offset) {
            members.insert(String::from_utf8_lossy(name.slice()).into_owned(), offset);
        }
    }
    Ok(members)
}

/// A string attribute in the forms a unit-less reader can resolve. Go writes names inline
/// (`DW_FORM_string`); `strp`/`line_strp` are accepted for robustness, `strx` (needs the unit's
/// string-offsets base) is not used by Go and reads as no name.
fn string<'a>(dwarf: &gimli::Dwarf<R<'a>>, value: gimli::AttributeValue<R<'a>>) -> Option<R<'a>> {
    match value {
        gimli::AttributeValue::String(s) => Some(s),
        gimli::AttributeValue::DebugStrRef(o) => dwarf.debug_str.get_str(o).ok(),
        gimli::AttributeValue::DebugLineStrRef(o) => dwarf.debug_line_str.get_str(o).ok(),
        _ => None,
    }
}
