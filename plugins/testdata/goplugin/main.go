// Command goplugin is the host's test plugin: a small but complete SDK plugin whose sync
// option "mode" and route paths select misbehaviours (trap, infinite loop, memory bomb,
// exit, panic) and workloads (emit N units, read a fetched file) for host/plugin's tests
// and benchmarks.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o goplugin.wasm ./plugins/testdata/goplugin
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// Item is a unit with one artifact at relative path Name.
type Item struct {
	Name string `json:"name" desc:"Relative path of the item"`
	Size int64  `json:"size,omitempty"`
}

// Label points at an item.
type Label struct {
	Label string `json:"label"`
}

type syncOptions struct {
	Mode  string `json:"mode"`
	Count int    `json:"count"`
}

func init() {
	sdk.Register(sdk.Plugin{
		Name:        "testplug",
		Version:     "0.0.1",
		Description: "Test plugin for the Pulpo host",
		Types: []sdk.Type{
			sdk.ContentType[Item]("testplug.item", sdk.NaturalKey("name"), sdk.OneArtifact("name")),
			sdk.ContentType[Label]("testplug.label", sdk.NaturalKey("label"),
				sdk.Relates(abi.RelationType{Name: "item", To: "testplug.item"})),
		},
		RepositoryTypes: []abi.RepositoryType{{Name: "testplug.repo", ContentTypes: []string{"testplug.item", "testplug.label"},
			RemoteTypes: []string{"testplug.remote"}}},
		RemoteTypes:      []abi.RemoteType{{Name: "testplug.remote"}},
		PublicationTypes: []abi.PublicationType{{Name: "testplug.pub"}},
		SyncOptions: []abi.Field{
			{Name: "mode", Type: abi.TypeString, Enum: []string{"", "lines", "emit", "read", "trap", "loop", "bomb", "exit", "panic", "invalid", "lookup", "readart", "cancel", "badcalls", "badmeta"}},
			{Name: "count", Type: abi.TypeInteger},
		},
		Sync:    syncStage,
		Publish: publish,
		Routes:  []sdk.Route{{Prefix: "/test/", Handle: route}},
	})
}

func syncStage(ctx context.Context, s *sdk.Sync) error {
	var opt syncOptions
	if err := s.Options(&opt); err != nil {
		return err
	}
	switch opt.Mode {
	case "", "lines":
		return syncLines(ctx, s)
	case "emit":
		for i := range opt.Count {
			it := Item{Name: fmt.Sprintf("items/%08d", i), Size: int64(i)}
			art := abi.DeclarativeArtifact{RelativePath: it.Name, URL: s.Remote.URL + it.Name, Size: it.Size, Deferred: s.Deferred()}
			if err := s.Emit(ctx, it, art); err != nil {
				return err
			}
		}
		return nil
	case "read":
		f, err := s.Fetch(ctx, s.Remote.URL, sdk.Name("blob"))
		if err != nil {
			return err
		}
		file, err := f.Open()
		if err != nil {
			return err
		}
		defer file.Close()
		start := time.Now()
		n, err := io.Copy(io.Discard, file)
		if err != nil {
			return err
		}
		return s.SetDetails(map[string]int64{"read": n, "read_ns": time.Since(start).Nanoseconds()})
	case "invalid":
		return s.EmitDeclarative(ctx, abi.DeclarativeContent{Type: "testplug.nope", Fields: []byte(`{}`)})
	case "lookup":
		found, err := s.Lookup(ctx, "testplug.item", abi.ScopeAll, Item{Name: "a"}, map[string]string{"name": "b"})
		if err != nil {
			return err
		}
		exists, size, err := s.ArtifactExists(ctx, strings.Repeat("ab", 32))
		if err != nil {
			return err
		}
		return s.SetDetails(map[string]any{"found": len(found), "exists": exists, "size": size})
	case "readart":
		// artifact_read (ABI 1.1): a slice of artifact cd..cd, a missing one, a bad one.
		data, size, err := s.ReadArtifact(ctx, strings.Repeat("cd", 32), 2, 5)
		if err != nil {
			return err
		}
		_, _, missing := s.ReadArtifact(ctx, strings.Repeat("ef", 32), 0, 0)
		_, _, tooLong := s.ReadArtifact(ctx, strings.Repeat("cd", 32), 0, abi.MaxArtifactReadBytes+1)
		return s.SetDetails(map[string]any{"data": string(data), "size": size,
			"missing": errCode(missing), "too_long": errCode(tooLong)})
	case "cancel":
		for !s.Cancelled() {
		}
		return ctx.Err()
	case "badcalls":
		return badCalls(ctx, s)
	case "badmeta":
		s.KeepMetadata(&sdk.Fetched{Path: "/etc/passwd"}, "passwd")
		return nil
	}
	misbehave(opt.Mode)
	return fmt.Errorf("unknown mode %q", opt.Mode)
}

// syncLines fetches a text file, checks that the mount is read-only, and emits one item per
// line plus a label pointing at the first item.
func syncLines(ctx context.Context, s *sdk.Sync) error {
	f, err := s.Fetch(ctx, s.Remote.URL, sdk.Name("data/lines.txt"))
	if err != nil {
		return err
	}
	writeErr := os.WriteFile(filepath.Join(filepath.Dir(f.Path), "scribble"), []byte("x"), 0o644)
	if writeErr == nil {
		return errors.New("the read-only mount accepted a write")
	}
	file, err := f.Open()
	if err != nil {
		return err
	}
	defer file.Close()
	h := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(file, h))
	var first string
	n := int64(0)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if first == "" {
			first = line
		}
		it := Item{Name: line, Size: int64(len(line))}
		art := abi.DeclarativeArtifact{RelativePath: line, URL: s.Remote.URL + "/" + line, Deferred: s.Deferred()}
		if err := s.Emit(ctx, it, art); err != nil {
			return err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if first != "" {
		if err := s.EmitUnit(ctx, sdk.Unit{Content: Label{Label: "first"}, Relations: []sdk.Relation{{Name: "item", To: Item{Name: first}}}}); err != nil {
			return err
		}
	}
	s.Log.Info("lines parsed", "count", n, "path", f.Path)
	if err := s.Progress(ctx, abi.ProgressReport{Code: "sync.parsing", Message: "Parsing lines", Done: n, Total: n, State: abi.StateCompleted}); err != nil {
		return err
	}
	s.KeepMetadata(f, "lines.txt")
	return s.SetDetails(map[string]any{
		"lines": n, "sha256": hex.EncodeToString(h.Sum(nil)), "host_sha256": f.SHA256,
		"status": f.Status, "write_error": writeErr.Error(),
	})
}

// errCode is the ABI error code of err, "ok" for nil.
func errCode(err error) string {
	var ae *abi.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	if err == nil {
		return "ok"
	}
	return "not an ABI error: " + err.Error()
}

// badCalls makes malformed host calls and reports the error code of each.
func badCalls(ctx context.Context, s *sdk.Sync) error {
	code := errCode
	codes := map[string]string{}
	_, err := s.Fetch(ctx, "https://upstream.test/x", sdk.Name("../escape"))
	codes["fetch_name"] = code(err)
	_, err = s.Fetch(ctx, "")
	codes["fetch_url"] = code(err)
	_, err = s.Lookup(ctx, "Bad Type", "")
	codes["lookup_type"] = code(err)
	_, err = s.Lookup(ctx, "testplug.item", "nope")
	codes["lookup_scope"] = code(err)
	_, _, err = s.ArtifactExists(ctx, "XYZ")
	codes["artifact_stat"] = code(err)
	_, _, err = s.ReadArtifact(ctx, "XYZ", 0, 0)
	codes["artifact_read"] = code(err)
	codes["progress"] = code(s.Progress(ctx, abi.ProgressReport{}))
	return s.SetDetails(codes)
}

func publish(ctx context.Context, p *sdk.Publish) error {
	if err := os.WriteFile(filepath.Join(p.InDir, "scribble"), []byte("x"), 0o644); err == nil {
		return errors.New("the read-only mount accepted a write")
	}
	w, err := p.Create("INDEX")
	if err != nil {
		return err
	}
	n := 0
	for c, err := range p.Content() {
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s\n", c.Type, c.Fields)
		n++
	}
	p.PassThrough()
	p.Log.Debug("published", "units", n)
	return w.Close()
}

func route(ctx context.Context, r *sdk.Request) (abi.RouteResponse, error) {
	switch name := strings.TrimPrefix(r.Path, "/test/"); name {
	case "empty":
		return abi.RouteResponse{Status: 204}, nil
	case "echo":
		return abi.RouteResponse{Status: 200, Body: r.Body}, nil
	case "error":
		return abi.RouteResponse{}, sdk.Errorf(abi.CodeNotFound, "no %s here", r.Path)
	default:
		misbehave(name)
		return abi.RouteResponse{}, sdk.Errorf(abi.CodeNotFound, "unknown test route %s", r.Path)
	}
}

// sink and sinkWord keep results alive so that the misbehaviours are not optimised away.
var (
	sink     [][]byte
	sinkWord uint64
)

// misbehave does what its name says; it returns for unknown names.
func misbehave(name string) {
	switch name {
	case "trap":
		// A load 3 GiB past a variable, far outside linear memory: a WebAssembly trap, not a
		// Go panic.
		sinkWord = *(*uint64)(unsafe.Add(unsafe.Pointer(&sinkWord), 3<<30))
	case "loop":
		for {
		}
	case "bomb":
		for {
			sink = append(sink, make([]byte, 8<<20))
			sink[len(sink)-1][0] = 1
		}
	case "exit":
		os.Exit(3)
	case "panic":
		panic("test panic")
	}
}

// test_silent_fail returns failure without an error message, which the host must still
// treat as a failure.
//
//go:wasmexport test_silent_fail
func testSilentFail() int32 { return 1 }

func main() {}
