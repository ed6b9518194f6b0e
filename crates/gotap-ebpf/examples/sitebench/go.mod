module sitebench

go 1.22
