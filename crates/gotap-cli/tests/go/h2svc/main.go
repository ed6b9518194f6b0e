// h2svc: a net/http server over HTTPS (HTTP/2 and HTTP/1.1, by ALPN) and over h2c (HTTP/2
// without TLS, Server.Protocols), with handlers answering 200, 418 and 503, for
// crates/gotap-cli/tests/http2.rs. The certificate is self-signed, generated at start-up: no key
// material in the repository.
//
// With -client, the same binary is the test's client instead: it sends each path over HTTP/2
// with TLS, HTTP/1.1 with TLS (HTTP/2 turned off in the client) and h2c,
// and prints one line per request: "<transport> <path> <status> <proto>". Its User-Agent is
// "h2svc-client/<transport>".
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

var paths = []string{"/ok", "/teapot", "/unavailable"}

func main() {
	tlsAddr := flag.String("tls", "127.0.0.1:8443", "HTTPS listen address")
	h2cAddr := flag.String("h2c", "127.0.0.1:8080", "h2c listen address")
	client := flag.Bool("client", false, "be the client of -tls and -h2c")
	flag.Parse()
	if *client {
		runClient(*tlsAddr, *h2cAddr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /teapot", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "teapot\n")
	})
	mux.HandleFunc("GET /unavailable", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})

	cert := selfSigned()
	tlsSrv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	ln, err := net.Listen("tcp", *tlsAddr)
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(tlsSrv.ServeTLS(ln, "", "")) }()

	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	h2cSrv := &http.Server{Addr: *h2cAddr, Handler: mux, Protocols: &p}
	log.Fatal(h2cSrv.ListenAndServe())
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h2svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func runClient(tlsAddr, h2cAddr string) {
	// The server's certificate is self-signed. One config per transport: the HTTP/2 transport
	// adds "h2" to its config's NextProtos, which would make the HTTP/1 one offer it too.
	insecure := func() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
	h2 := &http.Transport{TLSClientConfig: insecure(), ForceAttemptHTTP2: true}
	h1 := &http.Transport{TLSClientConfig: insecure(),
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &p}
	for _, c := range []struct {
		name, base string
		rt         http.RoundTripper
	}{
		{"h2", "https://" + tlsAddr, h2},
		{"h1", "https://" + tlsAddr, h1},
		{"h2c", "http://" + h2cAddr, h2c},
	} {
		cl := &http.Client{Transport: c.rt, Timeout: 10 * time.Second}
		for _, path := range paths {
			req, err := http.NewRequest("GET", c.base+path, nil)
			if err != nil {
				log.Fatal(err)
			}
			// A user agent naming the transport: every strategy must report it.
			req.Header.Set("User-Agent", "h2svc-client/"+c.name)
			resp, err := cl.Do(req)
			if err != nil {
				fmt.Fprintln(os.Stderr, c.name, path, err)
				os.Exit(1)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Println(c.name, path, resp.StatusCode, resp.Proto)
		}
	}
}
