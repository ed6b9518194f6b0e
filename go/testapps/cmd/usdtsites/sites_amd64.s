// Same sites as instrumentations/nethttp/probes/gotap_probes_amd64.s, in package main.
#include "textflag.h"

TEXT ·gotapProbeHTTPServer(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

TEXT ·gotapProbeHTTPClient(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET
