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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_not_ret_bytes_inside_other_instructions() {
        // mov eax, 0xc3c3c3c3 ; ret ; nop ; ret 8 ; int3
        let code = [0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0x90, 0xc2, 0x08, 0x00, 0xcc];
        assert_eq!(amd64_ret_sites(&code, 0x1000), vec![0x1005, 0x1007]);
        assert!(amd64_ret_sites(&[], 0).is_empty());
        // Truncated instruction at the end: no panic, nothing found.
        assert!(amd64_ret_sites(&[0xb8, 0xc3], 0).is_empty());
    }
}
