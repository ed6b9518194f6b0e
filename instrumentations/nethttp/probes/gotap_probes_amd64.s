// Probe sites for net/http (see gotap_probes.go). Each site loads the address and length of its
// last argument, the span's event built by the woven code, into SI and DX, then executes a
// 5-byte NOP (0f 1f 44 00 00): the probe sits on that NOP, where a uprobe is optimised by the
// kernel (Linux >= 6.18, x86-64) into a call to a trampoline instead of a trap, and the BPF
// program reads the event from the two registers. The USDT notes gotap writes at link time
// describe the arguments relative to the stack pointer at that NOP: first argument at 8(%rsp).
// The prologue's bytes are a contract (SITE_EVENT_PROLOGUE in crates/gotap-binary/src/usdt.rs).

#include "textflag.h"

// func gotapProbeHTTPServer(method, path string, status, durationNs int64, pattern string, rec *gotapProbeRecord, event string)
TEXT ·gotapProbeHTTPServer(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

// func gotapProbeHTTPClient(method, url string, status, durationNs int64, errText string, rec *gotapProbeRecord, event string)
TEXT ·gotapProbeHTTPClient(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
