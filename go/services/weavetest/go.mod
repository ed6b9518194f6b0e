module gotap.dev/weavetest

go 1.23
