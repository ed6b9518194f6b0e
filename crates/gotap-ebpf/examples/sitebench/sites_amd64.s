// Same sites as go/probes/nethttp/gotap_probes_amd64.s (docs/probes.md, "The contract"), in package main.
#include "textflag.h"

TEXT ·gotapProbeHTTPServer(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

TEXT ·gotapProbeHTTPClient(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
