// Package tracing records OpenTelemetry spans and exports them over OTLP/HTTP
// (JSON), when an endpoint is configured. It keeps to what Pulpo needs: W3C
// trace context in and out, server, client and internal spans with
// attributes and an error status, head sampling by trace id, and a bounded,
// batching exporter that drops spans rather than slow a request down. With
// tracing off every call is a nil check.
//
// The tracer travels in the context with the span: code deep in a call
// (a download, a plugin call) starts a child span from its ctx alone.
package tracing

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kind is a span's OTLP kind.
type Kind int

// The kinds Pulpo uses (OTLP's SpanKind numbers).
const (
	Internal Kind = 1
	Server   Kind = 2
	Client   Kind = 3
)

// SpanContext identifies a span across processes.
type SpanContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Sampled bool
}

// Valid reports whether both ids are set, as W3C requires.
func (sc SpanContext) Valid() bool { return sc.TraceID != [16]byte{} && sc.SpanID != [8]byte{} }

// Traceparent formats sc as a W3C traceparent header value ("" if invalid).
func (sc SpanContext) Traceparent() string {
	if !sc.Valid() {
		return ""
	}
	flags := "00"
	if sc.Sampled {
		flags = "01"
	}
	return "00-" + hex.EncodeToString(sc.TraceID[:]) + "-" + hex.EncodeToString(sc.SpanID[:]) + "-" + flags
}

// ParseTraceparent reads a W3C traceparent value: version 00 exactly, later
// versions by their first four fields, as the spec asks of a version-00
// reader. All-zero ids and malformed values are refused.
func ParseTraceparent(s string) (SpanContext, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return SpanContext{}, false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return SpanContext{}, false
	}
	var sc SpanContext
	var ver, flags [1]byte
	for _, f := range []struct {
		dst []byte
		src string
	}{{ver[:], s[:2]}, {sc.TraceID[:], s[3:35]}, {sc.SpanID[:], s[36:52]}, {flags[:], s[53:55]}} {
		if strings.ToLower(f.src) != f.src {
			return SpanContext{}, false
		}
		if _, err := hex.Decode(f.dst, []byte(f.src)); err != nil {
			return SpanContext{}, false
		}
	}
	sc.Sampled = flags[0]&1 == 1
	return sc, sc.Valid()
}

// Attr is a span attribute: its value is a string, an int64, a bool or a
// float64 (anything else is formatted as a string).
type Attr struct {
	Key   string
	Value any
}

// String, Int and Bool make attributes.
func String(k, v string) Attr    { return Attr{k, v} }
func Int(k string, v int64) Attr { return Attr{k, v} }
func Bool(k string, v bool) Attr { return Attr{k, v} }

// Span is one timed operation. A nil *Span (tracing off, or not sampled)
// accepts every call and records nothing.
type Span struct {
	tracer *Tracer
	sc     SpanContext
	parent [8]byte
	kind   Kind

	mu     sync.Mutex
	name   string
	start  time.Time
	end    time.Time
	attrs  []Attr
	errMsg string
	failed bool
	ended  bool
}

// Context returns the span's identity (zero for a nil span).
func (s *Span) Context() SpanContext {
	if s == nil {
		return SpanContext{}
	}
	return s.sc
}

// SetName renames the span, e.g. once a router knows the route.
func (s *Span) SetName(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.name = name
	s.mu.Unlock()
}

// SetAttrs adds attributes.
func (s *Span) SetAttrs(attrs ...Attr) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.attrs = append(s.attrs, attrs...)
	s.mu.Unlock()
}

// Fail marks the span as an error.
func (s *Span) Fail(msg string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.failed, s.errMsg = true, msg
	s.mu.Unlock()
}

// End ends the span, failed if err is not nil, and hands it to the
// exporter. Later calls do nothing.
func (s *Span) End(err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, time.Now()
	if err != nil {
		s.failed, s.errMsg = true, err.Error()
	}
	s.mu.Unlock()
	s.tracer.exp.add(s)
}

type spanKey struct{}

// remote is a span context from another process, with the tracer to
// continue it with.
type remote struct {
	tracer *Tracer
	sc     SpanContext
}

// SpanFrom returns the span ctx carries, or nil.
func SpanFrom(ctx context.Context) *Span {
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}

// Traceparent returns the W3C traceparent of the span in ctx ("" without
// one), to hand the trace on: to an upstream request, or to a task row.
func Traceparent(ctx context.Context) string {
	switch v := ctx.Value(spanKey{}).(type) {
	case *Span:
		return v.Context().Traceparent()
	case remote:
		return v.sc.Traceparent()
	}
	return ""
}

// Start starts a child of the span in ctx with the tracer that started it.
// Without a span in ctx (tracing off, or the trace not sampled) it returns
// ctx and a nil span.
func Start(ctx context.Context, name string, kind Kind, attrs ...Attr) (context.Context, *Span) {
	switch v := ctx.Value(spanKey{}).(type) {
	case *Span:
		return v.tracer.start(ctx, name, kind, v.sc.TraceID, v.sc.SpanID, attrs)
	}
	// No span, or a remote parent that was not sampled: nothing is recorded,
	// and ctx keeps handing the trace on.
	return ctx, nil
}

// Config configures a Tracer.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces.
	Endpoint string
	// Service is the resource's service.name. Default "pulpo".
	Service string
	// SampleRatio is the share of new traces recorded, 0..1 (a trace
	// continued from a sampled parent is always recorded).
	SampleRatio float64
	// Attrs describe the process (service.version, service.instance.id...).
	Attrs []Attr
	// QueueSize bounds the spans waiting for export; more are dropped.
	// Default 4096.
	QueueSize int
	// BatchSize and Interval bound a batch. Defaults 512 and 2 s.
	BatchSize int
	Interval  time.Duration
}

// Tracer starts spans and exports them. A nil *Tracer is tracing off.
type Tracer struct {
	sample uint64 // trace ids whose low 8 bytes are below this are sampled
	exp    *exporter
}

// New starts a tracer exporting to cfg.Endpoint; Shutdown flushes it.
func New(cfg Config) (*Tracer, error) {
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("tracing: no endpoint")
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio %v is not within 0..1", cfg.SampleRatio)
	}
	if cfg.Service == "" {
		cfg.Service = "pulpo"
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 512
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	t := &Tracer{exp: newExporter(cfg)}
	switch {
	case cfg.SampleRatio >= 1:
		t.sample = ^uint64(0)
	case cfg.SampleRatio > 0:
		t.sample = uint64(cfg.SampleRatio * float64(^uint64(0)))
	}
	return t, nil
}

// Shutdown exports what is queued, until ctx ends, and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.exp.shutdown(ctx)
}

// Dropped counts spans dropped because the queue was full or an export failed.
func (t *Tracer) Dropped() uint64 {
	if t == nil {
		return 0
	}
	return t.exp.dropped.Load()
}

// StartRoot starts a span that continues the W3C traceparent tp when it
// parses (a request's header, a task's stored context), else a new trace
// sampled by the ratio. Without a tracer it returns ctx and a nil span.
func (t *Tracer) StartRoot(ctx context.Context, tp, name string, kind Kind, attrs ...Attr) (context.Context, *Span) {
	if t == nil {
		return ctx, nil
	}
	if sc, ok := ParseTraceparent(tp); ok {
		if !sc.Sampled {
			// Not recorded, but the decision and the trace id travel on.
			return context.WithValue(ctx, spanKey{}, remote{tracer: t, sc: sc}), nil
		}
		return t.start(ctx, name, kind, sc.TraceID, sc.SpanID, attrs)
	}
	var tid [16]byte
	_, _ = rand.Read(tid[:])
	if binary.BigEndian.Uint64(tid[8:]) > t.sample || t.sample == 0 {
		return ctx, nil
	}
	return t.start(ctx, name, kind, tid, [8]byte{}, attrs)
}

func (t *Tracer) start(ctx context.Context, name string, kind Kind, trace [16]byte, parent [8]byte, attrs []Attr) (context.Context, *Span) {
	s := &Span{tracer: t, kind: kind, name: name, start: time.Now(), parent: parent, attrs: attrs}
	s.sc.TraceID, s.sc.Sampled = trace, true
	for s.sc.SpanID == [8]byte{} {
		_, _ = rand.Read(s.sc.SpanID[:])
	}
	return context.WithValue(ctx, spanKey{}, s), s
}
