package gotaprt

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	_ "unsafe" // for go:linkname

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Names and attributes follow instrumentations/nethttp/spans.rs exactly: both strategies must emit
// the same spans for the same request.

// Implemented by the woven net/http (see instrumentations/nethttp/weave/rules.yaml).
//
//go:linkname setServerStart net/http.gotapSetServerStart
func setServerStart(func(*http.Request) (*http.Request, func(status int)))

//go:linkname setClientRoundTrip net/http.gotapSetClientRoundTrip
func setClientRoundTrip(func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error))

var _ = addHook(func() {
	setServerStart(serverStart)
	setClientRoundTrip(clientRoundTrip)
})

// captureQuery is GOTAP_CAPTURE_QUERY=1 (or true), read once at start: the woven binary's
// --capture-query of gotap run. With it, server spans record url.query and client spans keep
// query values in url.full; without it (the default) a query string, which may carry secrets,
// shows only its keys (`?apikey=REDACTED`).
var captureQuery = envOn(os.Getenv("GOTAP_CAPTURE_QUERY"))

func envOn(v string) bool {
	v = strings.TrimSpace(v)
	return v == "1" || strings.EqualFold(v, "true")
}

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// method returns the semconv method and, for unknown methods, the original-method attribute.
func method(m string, attrs []attribute.KeyValue) (string, []attribute.KeyValue) {
	if knownMethods[m] {
		return m, attrs
	}
	return "_OTHER", append(attrs, attribute.String("http.request.method_original", m))
}

// routeFromPattern turns a ServeMux pattern (`GET example.com/users/{id}`) into `/users/{id}`.
func routeFromPattern(p string) string {
	p = strings.TrimSpace(p)
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i+1:], " ")
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i:]
	}
	return ""
}

func splitHostPort(hp string) (string, int) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, -1
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return host, -1
	}
	return host, int(n)
}

func serverStart(r *http.Request) (*http.Request, func(status int)) {
	prop := propagator()
	ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	attrs := make([]attribute.KeyValue, 0, 12)
	m, attrs := method(r.Method, attrs)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs,
		attribute.String("http.request.method", m),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme),
	)
	if captureQuery && r.URL.RawQuery != "" {
		attrs = append(attrs, attribute.String("url.query", r.URL.RawQuery))
	}
	if r.Host != "" {
		host, port := splitHostPort(r.Host)
		attrs = append(attrs, attribute.String("server.address", host))
		if port >= 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	if r.RemoteAddr != "" {
		host, port := splitHostPort(r.RemoteAddr)
		attrs = append(attrs, attribute.String("client.address", host))
		if port >= 0 {
			attrs = append(attrs, attribute.Int("client.port", port))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	if r.Proto != "" {
		attrs = append(attrs, attribute.String("network.protocol.version", protocolVersion(r.Proto)))
	}
	name := m
	if m == "_OTHER" {
		name = "HTTP"
	}
	ctx, span := tracerProvider().Tracer(serverScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	r = r.WithContext(ctx)
	return r, func(status int) {
		// ServeMux records the matched pattern on the request it was given: ours.
		if route := routeFromPattern(r.Pattern); route != "" {
			span.SetAttributes(attribute.String("http.route", route))
			if m != "_OTHER" {
				span.SetName(m + " " + route)
			}
		}
		if status < 0 || status == 0 && r.ProtoMajor >= 2 {
			// The status is unknown: negative is a writer the hook cannot read, and 0 over
			// HTTP/2 is what the woven hook (instrumentations/nethttp/weave/rules.yaml, gotapStatusOf) passes for
			// HTTP/2's writer while it reads only HTTP/1's *response (a hook that reads HTTP/2's
			// writer should pass its status, 200 when the handler wrote nothing). A 200 here
			// would hide a 418 or a 503: leave the attribute out instead.
			span.End()
			return
		}
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200 after the handler
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		}
		span.End()
	}
}

// protocolVersion is network.protocol.version from Request.Proto, as protocol_version_value in
// crates/gotap-spans: Go says "HTTP/2.0" for HTTP/2, semconv "2".
func protocolVersion(proto string) string {
	v := strings.TrimPrefix(proto, "HTTP/")
	if v == "2.0" {
		return "2"
	}
	return v
}

func clientRoundTrip(r *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	ctx := r.Context()
	if ctx.Value(suppressKey{}) != nil || r.URL == nil || isOTLPExport(r) {
		return next(r)
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	m, attrs := method(r.Method, attrs)
	attrs = append(attrs,
		attribute.String("http.request.method", m),
		attribute.String("url.full", redactedURL(r.URL, captureQuery)),
	)
	if host, port, ok := urlHostPort(r.URL); ok {
		attrs = append(attrs, attribute.String("server.address", host), attribute.Int("server.port", port))
	}
	name := m
	if m == "_OTHER" {
		name = "HTTP"
	}
	ctx, span := tracerProvider().Tracer(clientScope, trace.WithInstrumentationVersion(Version)).
		Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	// RoundTrip must not modify the caller's request: inject into a clone.
	r = r.Clone(ctx)
	propagator().Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := next(r)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", errorType(err.Error())))
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
	}
	return resp, nil
}

// isOTLPExport recognises the OTel Go OTLP/HTTP exporters of an application that has its own SDK
// (by their fixed User-Agent): tracing their uploads would add a span per export, forever.
func isOTLPExport(r *http.Request) bool {
	ua := r.Header.Get("User-Agent")
	return strings.HasPrefix(ua, "OTel OTLP Exporter Go/") || strings.HasPrefix(ua, "OTel Go OTLP over HTTP")
}

func errorType(e string) string {
	switch {
	case strings.Contains(e, "connection refused"):
		return "connection_refused"
	case strings.Contains(e, "timeout"), strings.Contains(e, "deadline"):
		return "timeout"
	}
	return "_OTHER"
}

// redactedURL hides credentials as semconv requires for url.full and, unless keepQuery, the
// query's values (as http::redact_query in crates/gotap-spans).
func redactedURL(u *url.URL, keepQuery bool) string {
	redactQuery := !keepQuery && strings.Contains(u.RawQuery, "=")
	if u.User == nil && !redactQuery {
		return u.String()
	}
	c := *u
	if u.User != nil {
		c.User = url.UserPassword("REDACTED", "REDACTED")
	}
	if redactQuery {
		c.RawQuery = redactedQuery(u.RawQuery)
	}
	return c.String()
}

// redactedQuery: each key=value of a raw query becomes key=REDACTED; a key without '=' is kept.
func redactedQuery(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 8)
	for i, pair := range strings.Split(q, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		if k, _, ok := strings.Cut(pair, "="); ok {
			b.WriteString(k)
			b.WriteString("=REDACTED")
		} else {
			b.WriteString(pair)
		}
	}
	return b.String()
}

func urlHostPort(u *url.URL) (string, int, bool) {
	host := u.Hostname()
	if host == "" {
		return "", 0, false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return "", 0, false
		}
		return host, int(n), true
	}
	switch u.Scheme {
	case "http":
		return host, 80, true
	case "https":
		return host, 443, true
	}
	return "", 0, false
}
