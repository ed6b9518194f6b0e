// Command offsetgen exists only to be built: its binary's DWARF holds every standard-library
// struct whose field offsets gotap needs (scripts/gen-offsets.sh reads them from there). It is
// never run; main only has to reach the code that uses those types so the linker keeps them.
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		return
	}
	// Server side: net/http.conn, net/http.response, bufio.Reader, net.conn, net.netFD,
	// internal/poll.FD, net.TCPAddr.
	go http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RemoteAddr)
	}))
	// Client side: net/http.Transport, net/http.persistConn, net/http.Response.
	resp, err := http.Get("http://" + os.Args[1] + "/")
	if err == nil {
		fmt.Println(resp.StatusCode, resp.Request.URL)
		resp.Body.Close()
	}
	u, _ := url.Parse(os.Args[1])
	addr, _ := net.ResolveTCPAddr("tcp", u.Host)
	fmt.Println(addr, bufio.NewReader(os.Stdin).Buffered())
	// database/sql: driverConn, Stmt (no driver is registered: Open fails at first use).
	if db, err := sql.Open("none", ""); err == nil {
		if st, err := db.Prepare("SELECT 1"); err == nil {
			st.Close()
		}
		db.Close()
	}
}
