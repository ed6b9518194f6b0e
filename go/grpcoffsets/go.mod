module gotap.dev/tools/grpcoffsets

go 1.19
