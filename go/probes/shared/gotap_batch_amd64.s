// The batch site (see gotap_batch.go): the address and length of the buffered events into SI and
// DX, then the 5-byte NOP a uprobe is optimised on. USDT arguments: `8@%rsi 8@%rdx`. The bytes
// are a contract (SITE_BATCH_PROLOGUE in crates/gotap-binary/src/usdt.rs).

#include "textflag.h"

// func gotapProbeBatch(events string)
TEXT ·gotapProbeBatch(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ events_base+0(FP), SI
	MOVQ events_len+8(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
