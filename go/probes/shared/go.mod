module gotap.dev/probes/shared

go 1.23
