module gotap.dev/exitapp

go 1.26.0
