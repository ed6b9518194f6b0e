// Probe site for database/sql (see gotap_probes.go): first instruction the 5-byte NOP
// 0f 1f 44 00 00, arguments on the stack (first at 8(%rsp) at the NOP).

#include "textflag.h"

// func gotapProbeSQLQuery(driver, query string, failed, durationNs int64, errText string, rec *gotapProbeRecord)
TEXT ·gotapProbeSQLQuery(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

// The semaphore with its marker (docs/probes.md), as net/http's fragment defines it, for programs
// that link database/sql without net/http. DUPOK and larger than net/http's 16 bytes, so the
// linker keeps exactly one copy, this one, whatever the load order: the marker occurs once.
DATA net∕http·gotapProbeSemaphore+0(SB)/8, $0x2d7061746f670000
DATA net∕http·gotapProbeSemaphore+8(SB)/8, $0x726f6870616d6573
DATA net∕http·gotapProbeSemaphore+16(SB)/8, $0
DATA net∕http·gotapProbeSemaphore+24(SB)/8, $0
GLOBL net∕http·gotapProbeSemaphore(SB), DUPOK|NOPTR, $32
