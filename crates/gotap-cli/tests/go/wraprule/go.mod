module gotap.dev/wraprule

go 1.23
