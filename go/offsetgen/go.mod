module gotap.dev/offsetgen

go 1.19
