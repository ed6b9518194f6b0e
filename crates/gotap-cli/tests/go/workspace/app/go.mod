module example.com/app

go 1.23

require example.com/lib v0.0.0

// Outside the workspace (GOWORK=off) the library comes from the directory next to this one.
replace example.com/lib => ../lib
