package tracing

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// exporter batches ended spans and posts them as OTLP/JSON
// (ExportTraceServiceRequest) to the endpoint, from one goroutine.
type exporter struct {
	cfg     Config
	client  *http.Client
	queue   chan *Span
	flush   chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
	res     otlpResource
}

func newExporter(cfg Config) *exporter {
	e := &exporter{cfg: cfg, client: &http.Client{Timeout: 10 * time.Second},
		queue: make(chan *Span, cfg.QueueSize), flush: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	e.res.Attributes = otlpAttrs(append([]Attr{String("service.name", cfg.Service)}, cfg.Attrs...))
	go e.loop()
	return e
}

// add queues a span; a full queue drops it rather than wait.
func (e *exporter) add(s *Span) {
	select {
	case <-e.stop:
		e.dropped.Add(1)
		return
	default:
	}
	select {
	case e.queue <- s:
	default:
		e.dropped.Add(1)
	}
}

func (e *exporter) loop() {
	defer close(e.done)
	tick := time.NewTicker(e.cfg.Interval)
	defer tick.Stop()
	var batch []*Span
	send := func() {
		if len(batch) > 0 {
			if err := e.post(batch); err != nil {
				e.dropped.Add(uint64(len(batch)))
			}
			batch = batch[:0]
		}
	}
	for {
		select {
		case s := <-e.queue:
			if batch = append(batch, s); len(batch) >= e.cfg.BatchSize {
				send()
			}
		case <-tick.C:
			send()
		case ack := <-e.flush:
			e.drain(&batch)
			send()
			close(ack)
		case <-e.stop:
			e.drain(&batch)
			send()
			return
		}
	}
}

// drain moves every queued span into batch.
func (e *exporter) drain(batch *[]*Span) {
	for {
		select {
		case s := <-e.queue:
			*batch = append(*batch, s)
		default:
			return
		}
	}
}

// forceFlush exports what is queued now (tests, shutdown).
func (e *exporter) forceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case e.flush <- ack:
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *exporter) shutdown(ctx context.Context) error {
	e.once.Do(func() { close(e.stop) })
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *exporter) post(batch []*Span) error {
	spans := make([]otlpSpan, 0, len(batch))
	for _, s := range batch {
		spans = append(spans, s.otlp())
	}
	body, err := json.Marshal(otlpRequest{ResourceSpans: []otlpResourceSpans{{
		Resource:   e.res,
		ScopeSpans: []otlpScopeSpans{{Scope: otlpScope{Name: "pulpo"}, Spans: spans}},
	}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, e.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tracing: collector answered %s", resp.Status)
	}
	return nil
}

// The OTLP/JSON shapes (opentelemetry-proto, JSON mapping: ids in hex,
// 64-bit integers as strings).
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name string `json:"name"`
	}
	otlpSpan struct {
		TraceID           string         `json:"traceId"`
		SpanID            string         `json:"spanId"`
		ParentSpanID      string         `json:"parentSpanId,omitempty"`
		Name              string         `json:"name"`
		Kind              Kind           `json:"kind"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		EndTimeUnixNano   string         `json:"endTimeUnixNano"`
		Attributes        []otlpKeyValue `json:"attributes,omitempty"`
		Status            otlpStatus     `json:"status"`
	}
	otlpStatus struct {
		Code    int    `json:"code,omitempty"` // 0 unset, 2 error
		Message string `json:"message,omitempty"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		StringValue *string  `json:"stringValue,omitempty"`
		IntValue    *string  `json:"intValue,omitempty"`
		BoolValue   *bool    `json:"boolValue,omitempty"`
		DoubleValue *float64 `json:"doubleValue,omitempty"`
	}
)

func (s *Span) otlp() otlpSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := otlpSpan{
		TraceID: hex.EncodeToString(s.sc.TraceID[:]), SpanID: hex.EncodeToString(s.sc.SpanID[:]),
		Name: s.name, Kind: s.kind,
		StartTimeUnixNano: strconv.FormatInt(s.start.UnixNano(), 10),
		EndTimeUnixNano:   strconv.FormatInt(s.end.UnixNano(), 10),
		Attributes:        otlpAttrs(s.attrs),
	}
	if s.parent != [8]byte{} {
		o.ParentSpanID = hex.EncodeToString(s.parent[:])
	}
	if s.failed {
		o.Status = otlpStatus{Code: 2, Message: s.errMsg}
	}
	return o
}

func otlpAttrs(attrs []Attr) []otlpKeyValue {
	out := make([]otlpKeyValue, 0, len(attrs))
	for _, a := range attrs {
		var v otlpAnyValue
		switch x := a.Value.(type) {
		case string:
			v.StringValue = &x
		case int64:
			s := strconv.FormatInt(x, 10)
			v.IntValue = &s
		case int:
			s := strconv.Itoa(x)
			v.IntValue = &s
		case bool:
			v.BoolValue = &x
		case float64:
			v.DoubleValue = &x
		default:
			s := fmt.Sprint(x)
			v.StringValue = &s
		}
		out = append(out, otlpKeyValue{Key: a.Key, Value: v})
	}
	return out
}
