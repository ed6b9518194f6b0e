// Probe sites for net/http (see gotap_probes.go). Each site starts with a 5-byte NOP
// (0f 1f 44 00 00): a uprobe on it is optimised by the kernel (Linux >= 6.18, x86-64) into a call
// to a trampoline instead of a trap. The USDT notes gotap writes at link time describe the
// arguments relative to the stack pointer at that NOP: first argument at 8(%rsp).

#include "textflag.h"

// func gotapProbeHTTPServer(method, path string, status, durationNs int64, pattern string, rec *gotapProbeRecord)
TEXT ·gotapProbeHTTPServer(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

// func gotapProbeHTTPClient(method, url string, status, durationNs int64, errText string, rec *gotapProbeRecord)
TEXT ·gotapProbeHTTPClient(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
