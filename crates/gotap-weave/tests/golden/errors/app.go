package app

func Handle(string) {}
