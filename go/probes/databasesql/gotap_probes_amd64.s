// Probe site for database/sql (see gotap_probes.go): first instruction the 5-byte NOP
// 0f 1f 44 00 00, arguments on the stack (first at 8(%rsp) at the NOP).

#include "textflag.h"

// func gotapProbeSQLQuery(driver, query string, failed, durationNs int64, errText string, rec *gotapProbeRecord)
TEXT ·gotapProbeSQLQuery(SB), NOSPLIT|NOFRAME, $0-72
	BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
	RET

