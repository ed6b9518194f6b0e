module gotap.dev/sigapp

go 1.26.0
