//! RET sites by disassembly. gotap never uses uretprobes (Go moves goroutine stacks, which breaks
//! the return-address trampoline: golang/go#22008), so "function returned" is a uprobe on every
//! `ret` instruction, and Go emits `ret` in the middle of functions too.
use iced_x86::{Decoder, DecoderOptions, Mnemonic};

/// Addresses of every `ret` (near, with or without immediate) in x86-64 `code` loaded at `ip`.
/// Undecodable bytes (padding, data) are skipped one instruction at a time as the decoder does.
pub fn amd64_ret_sites(code: &[u8], ip: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut sites = Vec::new();
    for insn in &mut decoder {
        if insn.mnemonic() == Mnemonic::Ret {
            sites.push(insn.ip());
        }
    }
    sites
}

/// Whether x86-64 `code` at `ip` calls or jumps (near, direct) to `target`: how an ABI wrapper
/// is told from the function it wraps.
pub fn amd64_branches_to(code: &[u8], ip: u64, target: u64) -> bool {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    (&mut decoder).into_iter().any(|insn| {
        (insn.is_call_near() || insn.is_jmp_short_or_near() || insn.is_jcc_short_or_near())
            && insn.near_branch_target() == target
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_not_ret_bytes_inside_other_instructions() {
        // mov eax, 0xc3c3c3c3 ; ret ; nop ; ret 8 ; int3
        let code = [
            0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0x90, 0xc2, 0x08, 0x00, 0xcc,
        ];
        assert_eq!(amd64_ret_sites(&code, 0x1000), vec![0x1005, 0x1007]);
        assert!(amd64_ret_sites(&[], 0).is_empty());
        // Truncated instruction at the end: no panic, nothing found.
        assert!(amd64_ret_sites(&[0xb8, 0xc3], 0).is_empty());
    }

    #[test]
    fn branch_targets() {
        // call +0x10 (rel32 from the next instruction at 0x1005) ; ret
        let code = [0xe8, 0x10, 0, 0, 0, 0xc3];
        assert!(amd64_branches_to(&code, 0x1000, 0x1015));
        assert!(!amd64_branches_to(&code, 0x1000, 0x1016));
        // jmp rel8 -2 (to itself)
        assert!(amd64_branches_to(&[0xeb, 0xfe], 0x2000, 0x2000));
    }
}
