// Package otlp is gotap's OTLP/HTTP span exporter: an sdktrace.SpanExporter that posts protobuf
// ExportTraceServiceRequests (encode.go) and reads the standard OTEL_EXPORTER_OTLP_*
// variables the way the OTel Go OTLP/HTTP exporter does. It replaces that exporter in the
// runtime because its generated protobuf packages pull in protobuf, grpc, genproto and
// grpc-gateway: more than half of the runtime's compile time (docs/benchmarks.md, "gotap build").
package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// userAgent names gotap's uploads (the Collector logs it).
const userAgent = "gotap-otlp"

// Config is the exporter's configuration, from the environment.
type Config struct {
	url      string // full URL of the traces endpoint
	headers  map[string]string
	timeout  time.Duration // per export, retries included
	gzip     bool
	tls      *tls.Config // nil: default
	Warnings []string    // settings read but not applied, for the caller to report once
}

// ConfigFromEnv reads, with the signal-specific OTEL_EXPORTER_OTLP_TRACES_* variable taking
// precedence over the generic one for each setting (as the OTel Go exporter does):
// ENDPOINT (base URL, "/v1/traces" appended; TRACES_ENDPOINT is used as is), HEADERS
// (comma-separated key=value, URL-decoded), TIMEOUT (milliseconds, default 10 s), COMPRESSION
// (gzip or none), INSECURE (for an endpoint without scheme), CERTIFICATE, CLIENT_CERTIFICATE and
// CLIENT_KEY (PEM files), PROTOCOL (only http/protobuf; anything else is reported and
// http/protobuf is used).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	env := func(name string) string {
		if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_" + name)); v != "" {
			return v
		}
		return strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + name))
	}
	cfg := Config{timeout: 10 * time.Second}

	insecure := false
	if v := env("INSECURE"); v != "" {
		insecure = strings.EqualFold(v, "true")
	}
	withScheme := func(raw string) string {
		if strings.Contains(raw, "://") {
			return raw
		}
		if insecure {
			return "http://" + raw
		}
		return "https://" + raw
	}
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); v != "" {
		u, err := url.Parse(withScheme(v))
		if err != nil || u.Host == "" {
			return cfg, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%q is not a URL", v)
		}
		if u.Path == "" {
			u.Path = "/"
		}
		cfg.url = u.String()
	} else if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); v != "" {
		u, err := url.Parse(withScheme(v))
		if err != nil || u.Host == "" {
			return cfg, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT=%q is not a URL", v)
		}
		u.Path = path.Join("/", u.Path, "v1/traces")
		cfg.url = u.String()
	} else {
		// The OTLP specification's default. (The OTel Go exporter, with no endpoint configured,
		// uses TLS to localhost:4318 unless OTEL_EXPORTER_OTLP_INSECURE=true.)
		cfg.url = "http://localhost:4318/v1/traces"
	}

	if v := env("HEADERS"); v != "" {
		cfg.headers = map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			k, err1 := url.PathUnescape(strings.TrimSpace(k))
			val, err2 := url.PathUnescape(strings.TrimSpace(val))
			if !ok || k == "" || err1 != nil || err2 != nil {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("ignoring malformed OTLP header %q", kv))
				continue
			}
			cfg.headers[k] = val
		}
	}
	if v := env("TIMEOUT"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("ignoring OTLP timeout %q (milliseconds expected)", v))
		} else {
			cfg.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	switch v := strings.ToLower(env("COMPRESSION")); v {
	case "", "none":
	case "gzip":
		cfg.gzip = true
	default:
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("ignoring OTLP compression %q (gzip or none)", v))
	}
	switch v := env("PROTOCOL"); v {
	case "", "http/protobuf":
	default:
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("OTLP protocol %q is not supported by gotap's runtime; exporting with http/protobuf to %s", v, cfg.url))
	}

	ca, cert, key := env("CERTIFICATE"), env("CLIENT_CERTIFICATE"), env("CLIENT_KEY")
	if ca != "" || cert != "" || key != "" {
		tc := &tls.Config{}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cfg, fmt.Errorf("OTLP certificate: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("OTLP certificate %s: no PEM certificate in it", ca)
			}
			tc.RootCAs = pool
		}
		if cert != "" || key != "" {
			c, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return cfg, fmt.Errorf("OTLP client certificate: %v", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cfg.tls = tc
	}
	return cfg, nil
}

// Exporter is gotap's sdktrace.SpanExporter.
type Exporter struct {
	cfg    Config
	client *http.Client

	stopped atomic.Bool // not under mu: Shutdown must not wait for an export in flight
	mu      sync.Mutex
	buf     []byte // reused between exports (the batch processor exports one batch at a time)

	// The export in flight, for a caller whose own bound passed first (InFlight).
	inFlight atomic.Int64
	lastErr  atomic.Pointer[error]
}

// LostError is a failed export: how many spans were dropped, where they were going, and why.
type LostError struct {
	Spans int
	URL   string
	Err   error // the cause, without the URL
}

func (e *LostError) Error() string {
	return fmt.Sprintf("%s not exported to %s: %v", Spans(e.Spans), e.URL, e.Err)
}

func (e *LostError) Unwrap() error { return e.Err }

// Spans is "1 span" or "n spans".
func Spans(n int) string {
	if n == 1 {
		return "1 span"
	}
	return fmt.Sprintf("%d spans", n)
}

type finalKey struct{}

// Final marks ctx as the export of a process about to end: a refused connection is then not
// retried (no collector will start listening before the process is gone), so the end is not
// delayed until ctx's deadline.
func Final(ctx context.Context) context.Context {
	return context.WithValue(ctx, finalKey{}, true)
}

func isFinal(ctx context.Context) bool {
	v, _ := ctx.Value(finalKey{}).(bool)
	return v
}

// InFlight describes the export still in progress as lost with cause err (a caller's bound that
// passed before the exporter's: its last attempt's error is added), or returns nil if none is.
func (e *Exporter) InFlight(err error) *LostError {
	if e == nil {
		return nil
	}
	n := e.inFlight.Load()
	if n == 0 {
		return nil
	}
	if last := e.lastErr.Load(); last != nil {
		err = fmt.Errorf("%w (last error: %v)", err, *last)
	}
	return &LostError{Spans: int(n), URL: e.cfg.url, Err: err}
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// New returns an exporter for cfg.
func New(cfg Config) *Exporter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.tls != nil {
		tr.TLSClientConfig = cfg.tls
	}
	return &Exporter{cfg: cfg, client: &http.Client{Transport: tr}}
}

// ExportSpans sends one request, retried on the statuses the OTLP specification calls
// retryable (429, 502, 503, 504) and on connection errors, honouring Retry-After, until the
// configured timeout. In a Final context a refused connection is not retried. A failure is a
// *LostError.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	if e.stopped.Load() {
		return errors.New("gotap: OTLP exporter is shut down")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inFlight.Store(int64(len(spans)))
	e.lastErr.Store(nil)
	defer e.inFlight.Store(0)
	if err := e.export(ctx, spans); err != nil {
		return &LostError{Spans: len(spans), URL: e.cfg.url, Err: err}
	}
	return nil
}

func (e *Exporter) export(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.buf = encodeTraceRequest(e.buf[:0], spans)
	body := e.buf
	if e.cfg.gzip {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(body)
		if err := w.Close(); err != nil {
			return err
		}
		body = z.Bytes()
	}
	if e.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.timeout)
		defer cancel()
	}
	final := isFinal(ctx)
	backoff := 500 * time.Millisecond
	for {
		retry, wait, err := e.post(ctx, body)
		if err == nil {
			return nil
		}
		err = cause(err)
		e.lastErr.Store(&err)
		if !retry || final && errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, 5*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// cause drops what the message around it already says (the method and URL of a *url.Error) and
// names a refused connection plainly; errors.Is still sees the original.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return refused{err}
	}
	return err
}

type refused struct{ err error }

func (r refused) Error() string { return "connection refused" }
func (r refused) Unwrap() error { return r.err }

// post sends the request once; retry says whether a failure may be retried, after wait if the
// server said how long.
func (e *Exporter) post(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", userAgent)
	for k, v := range e.cfg.headers {
		req.Header.Set(k, v)
	}
	if e.cfg.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, 0, err
	}
	defer resp.Body.Close()
	// The body of a success is an ExportTraceServiceResponse, whose partial_success is not
	// reported (the OTel Go exporter logs it); of a failure, usually a google.rpc.Status or text.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return false, 0, nil
	}
	err = fmt.Errorf("%s: %s", resp.Status, printable(msg))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		return true, wait, err
	}
	return false, 0, err
}

// printable keeps an error body readable in one line (it may be protobuf).
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, string(b))
	if s == "" {
		return "(empty body)"
	}
	return s
}

func (e *Exporter) Shutdown(ctx context.Context) error {
	e.stopped.Store(true)
	e.client.CloseIdleConnections()
	return ctx.Err()
}
