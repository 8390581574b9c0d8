package sdk

import (
	"context"
	"log/slog"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// hostHandler is a slog.Handler that sends records to the host's log function, which adds
// the plugin's name and the task's ids. Enabled asks the host (log_enabled), so a disabled
// debug line costs one host call and no formatting.
type hostHandler struct {
	host   bridge.Host
	attrs  []groupedAttr
	groups []string
}

type groupedAttr struct {
	groups []string
	attr   slog.Attr
}

func newLogger(h bridge.Host) *slog.Logger { return slog.New(&hostHandler{host: h}) }

func levelOf(l slog.Level) (int32, string) {
	switch {
	case l < slog.LevelDebug:
		return abi.LevelTrace, "trace"
	case l < slog.LevelInfo:
		return abi.LevelDebug, "debug"
	case l < slog.LevelWarn:
		return abi.LevelInfo, "info"
	case l < slog.LevelError:
		return abi.LevelWarn, "warn"
	}
	return abi.LevelError, "error"
}

func (h *hostHandler) Enabled(_ context.Context, l slog.Level) bool {
	n, _ := levelOf(l)
	return h.host.LogEnabled(n)
}

func (h *hostHandler) Handle(_ context.Context, r slog.Record) error {
	_, name := levelOf(r.Level)
	rec := abi.LogRecord{Level: name, Message: r.Message}
	if len(h.attrs) > 0 || r.NumAttrs() > 0 {
		rec.Attrs = map[string]any{}
		for _, ga := range h.attrs {
			put(rec.Attrs, ga.groups, ga.attr)
		}
		r.Attrs(func(a slog.Attr) bool {
			put(rec.Attrs, h.groups, a)
			return true
		})
	}
	h.host.Log(rec)
	return nil
}

func put(m map[string]any, groups []string, a slog.Attr) {
	for _, g := range groups {
		sub, ok := m[g].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[g] = sub
		}
		m = sub
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		sub := map[string]any{}
		for _, ga := range v.Group() {
			put(sub, nil, ga)
		}
		m[a.Key] = sub
		return
	}
	m[a.Key] = v.Any()
}

func (h *hostHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]groupedAttr(nil), h.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, groupedAttr{groups: h.groups, attr: a})
	}
	return &c
}

func (h *hostHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}
