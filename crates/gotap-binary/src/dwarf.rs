//! Struct field offsets from the binary's DWARF (gimli).
