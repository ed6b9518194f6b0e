// Probe sites for google.golang.org/grpc (see gotap_probes.go): the span's event (last argument)
// loaded into SI and DX, then the 5-byte NOP 0f 1f 44 00 00 the probe sits on; arguments on the
// stack (first at 8(%rsp) at the NOP). Same prologue as net/http's sites.

#include "textflag.h"

// func gotapProbeGRPCServer(fullMethod, peer string, code, durationNs int64, msg string, rec *gotapProbeRecord, event string)
TEXT ·gotapProbeGRPCServer(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

// func gotapProbeGRPCClient(fullMethod, target string, code, durationNs int64, msg string, rec *gotapProbeRecord, event string)
TEXT ·gotapProbeGRPCClient(SB), NOSPLIT|NOFRAME, $0-88
	MOVQ event_base+72(FP), SI
	MOVQ event_len+80(FP), DX
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

