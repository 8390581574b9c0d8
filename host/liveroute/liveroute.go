// Package liveroute serves a plugin's live API routes that declare no protocol the host
// implements: each request becomes a handle_route call (the plugin decides), and an
// answer naming an artifact (serve_artifact) is streamed by the host from storage, so
// artifact bytes never pass through the plugin.
package liveroute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/pluginhost"
	"github.com/pulpo/pulpo/host/storage"
)

// Router is the plugin side: handle_route.
type Router interface {
	HandleRoute(ctx context.Context, req abi.RouteRequest, host plugin.RouteHost) (abi.RouteResponse, error)
}

// maxBody bounds a request body sent to a plugin: it travels inside the call's input.
const maxBody = 8 << 20

// Handler serves one route prefix through a plugin.
type Handler struct {
	Plugin      Router
	DB          *db.DB
	Storage     storage.Driver
	NaturalKeys map[string][]string // of the plugin's content types, for lookups
	Logger      *slog.Logger
}

// ServeHTTP turns the request into a handle_route call and sends its answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, abi.CodeLimitExceeded, "request body too large")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, abi.CodeInvalidInput, "reading the request body failed")
		return
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, abi.CodeLimitExceeded, "request body too large")
		return
	}
	req := abi.RouteRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: map[string]string{}, Body: body}
	for k, vs := range r.Header {
		req.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	resp, err := h.Plugin.HandleRoute(r.Context(), req, &host{db: h.DB, naturalKeys: h.NaturalKeys})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 599 { // net/http panics outside 100-999; 1xx is no answer
		h.fail(w, r, fmt.Errorf("plugin answered HTTP status %d", status))
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	if resp.ServeArtifact != "" {
		h.serveArtifact(w, r, resp.ServeArtifact, status)
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(resp.Body) //nolint:errcheck // the client left
	}
}

// serveArtifact streams a stored artifact: with status 200, through http.ServeContent
// (Range, conditional requests); otherwise whole, with the plugin's status.
func (h *Handler) serveArtifact(w http.ResponseWriter, r *http.Request, sha256 string, status int) {
	a, err := h.DB.ArtifactBySHA256(r.Context(), sha256)
	if errors.Is(err, db.ErrNotFound) {
		h.fail(w, r, abi.NewError(abi.CodeNotFound, "artifact "+sha256+" is not stored"))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rd, err := h.Storage.Open(r.Context(), a.File)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer rd.Close()
	if status == http.StatusOK {
		http.ServeContent(w, r, "", rd.ModTime(), rd)
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.Copy(w, rd) //nolint:errcheck // the client left
	}
}

// statusOf maps a plugin's error code to an HTTP status.
var statusOf = map[string]int{ //nolint:gochecknoglobals // read-only
	abi.CodeInvalidInput:  http.StatusBadRequest,
	abi.CodeNotFound:      http.StatusNotFound,
	abi.CodeUnimplemented: http.StatusNotImplemented,
	abi.CodeLimitExceeded: http.StatusRequestEntityTooLarge,
	abi.CodeUpstream:      http.StatusBadGateway,
	abi.CodeUnavailable:   http.StatusServiceUnavailable,
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	var ae *abi.Error
	if errors.As(err, &ae) {
		if s, ok := statusOf[ae.Code]; ok {
			writeError(w, s, ae.Code, ae.Message)
			return
		}
	}
	if h.Logger != nil {
		h.Logger.ErrorContext(r.Context(), "live route failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, http.StatusInternalServerError, abi.CodeInternal, "internal error")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"code": code, "detail": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck
}

// host answers a route call's lookups: a live request works on no repository version,
// so only scope "all" finds anything.
type host struct {
	db          *db.DB
	naturalKeys map[string][]string
}

func (h *host) Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error) {
	if req.Scope != abi.ScopeAll {
		return nil, abi.NewError(abi.CodeInvalidInput, "a route call has no repository version: look up with scope all")
	}
	nk, ok := h.naturalKeys[req.Type]
	if !ok {
		return nil, abi.NewError(abi.CodeInvalidInput, "content type "+req.Type+" is not the plugin's")
	}
	keys := make([]string, 0, len(req.Keys))
	for _, k := range req.Keys {
		key, err := db.NaturalKey(k, nk)
		if err != nil {
			return nil, abi.NewError(abi.CodeInvalidInput, err.Error())
		}
		keys = append(keys, key)
	}
	found, err := h.db.ContentByKeys(ctx, req.Type, keys, nil)
	if err != nil {
		return nil, err
	}
	return pluginhost.Contents(ctx, h.db, found)
}

func (h *host) StatArtifact(ctx context.Context, sha256 string) (int64, bool, error) {
	return pluginhost.StatArtifact(ctx, h.db, sha256)
}
