package sdk_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

// demo is a small file-like plugin used to test the SDK natively.

type File struct {
	RelativePath string            `json:"relative_path" desc:"Path in a publication"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size,omitempty"`
	Labels       map[string]string `json:"labels"`
	Tags         []string          `json:"tags,omitempty"`
	Ignored      string            `json:"-"`
}

type Tag struct {
	Name string `json:"name"`
}

type options struct {
	Fail bool `json:"fail"`
}

func init() {
	sdk.Register(sdk.Plugin{
		Name:    "demo",
		Version: "1.2.3",
		Types: []sdk.Type{
			sdk.ContentType[File]("demo.file", sdk.NaturalKey("relative_path", "digest"),
				sdk.RepoKey("relative_path"), sdk.OneArtifact("relative_path"), sdk.EndpointName("files")),
			sdk.ContentType[Tag]("demo.tag", sdk.NaturalKey("name"),
				sdk.Relates(abi.RelationType{Name: "file", To: "demo.file", Required: true})),
		},
		RepositoryTypes:  []abi.RepositoryType{{Name: "demo.demo", ContentTypes: []string{"demo.file", "demo.tag"}, RemoteTypes: []string{"demo.demo"}}},
		RemoteTypes:      []abi.RemoteType{{Name: "demo.demo"}},
		PublicationTypes: []abi.PublicationType{{Name: "demo.demo"}},
		SyncOptions:      []abi.Field{{Name: "fail", Type: abi.TypeBoolean}},
		Sync:             syncDemo,
		Publish:          publishDemo,
		Routes: []sdk.Route{
			{Prefix: "/demo/", Handle: routeDemo},
			{Prefix: "/demo/deep/", Handle: func(context.Context, *sdk.Request) (abi.RouteResponse, error) {
				return abi.RouteResponse{Status: 204}, nil
			}},
		},
	})
}

func syncDemo(ctx context.Context, s *sdk.Sync) error {
	var opt options
	if err := s.Options(&opt); err != nil {
		return err
	}
	if opt.Fail {
		return fmt.Errorf("asked to: %w", sdk.Errorf(abi.CodeInvalidInput, "option fail is set"))
	}
	f, err := s.Fetch(ctx, s.Remote.URL, sdk.Name("MANIFEST"))
	if err != nil {
		return err
	}
	file, err := f.Open()
	if err != nil {
		return err
	}
	defer file.Close()
	s.Log.Info("parsing", "size", f.Size)
	sc := bufio.NewScanner(file)
	n := int64(0)
	var last File
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ",")
		size, _ := strconv.ParseInt(parts[2], 10, 64)
		last = File{RelativePath: parts[0], Digest: parts[1], Size: size}
		art := abi.DeclarativeArtifact{RelativePath: parts[0], URL: "https://example.org/" + parts[0],
			SHA256: parts[1], Size: size, Deferred: s.Deferred()}
		if err := s.Emit(ctx, last, art); err != nil {
			return err
		}
		n++
	}
	if err := s.EmitUnit(ctx, sdk.Unit{Content: Tag{Name: "latest"}, Relations: []sdk.Relation{{Name: "file", To: last}}}); err != nil {
		return err
	}
	if err := s.Progress(ctx, abi.ProgressReport{Code: "sync.parsing", Message: "Parsing", Done: n, Total: n, State: abi.StateCompleted}); err != nil {
		return err
	}
	s.KeepMetadata(f, "MANIFEST")
	return s.SetDetails(map[string]string{"sha256": f.SHA256})
}

func publishDemo(ctx context.Context, p *sdk.Publish) error {
	w, err := p.Create("MANIFEST")
	if err != nil {
		return err
	}
	for c, err := range p.Content() {
		if err != nil {
			return err
		}
		for _, a := range c.Artifacts {
			fmt.Fprintf(w, "%s,%s,%d\n", a.RelativePath, a.SHA256, a.Size)
			if err := p.PublishArtifact("by-digest/"+a.SHA256, a.SHA256); err != nil {
				return err
			}
		}
	}
	p.PassThrough()
	return w.Close()
}

func routeDemo(ctx context.Context, r *sdk.Request) (abi.RouteResponse, error) {
	switch r.Path {
	case "/demo/panic":
		panic("boom")
	case "/demo/missing":
		return abi.RouteResponse{}, sdk.Errorf(abi.CodeNotFound, "nothing at %s", r.Path)
	case "/demo/read":
		q, _ := url.ParseQuery(r.Query)
		off, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
		n, _ := strconv.ParseInt(q.Get("length"), 10, 64)
		data, size, err := r.ReadArtifact(ctx, q.Get("sha256"), off, n)
		if err != nil {
			return abi.RouteResponse{}, err
		}
		return sdk.JSON(200, map[string]any{"data": string(data), "size": size})
	case "/demo/lookup":
		found, err := r.Lookup(ctx, "demo.tag", abi.ScopeAll, map[string]string{"name": "latest"})
		if err != nil {
			return abi.RouteResponse{}, err
		}
		return sdk.JSON(200, found)
	}
	return sdk.JSON(200, map[string]string{"path": r.Path, "query": r.Query})
}

func manifest(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "dir/f%04d.txt,%064x,%d\n", i, i, i*10)
	}
	return []byte(b.String())
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d := sdktest.New(t).Describe()
	if d.Name != "demo" || d.Version != "1.2.3" || d.ABIVersion != abi.Current().String() {
		t.Fatalf("describe: %+v", d)
	}
	ct, _ := d.ContentTypeByName("demo.file")
	want := []abi.Field{
		{Name: "relative_path", Type: "string", Required: true, Description: "Path in a publication"},
		{Name: "digest", Type: "string", Required: true},
		{Name: "size", Type: "integer"},
		{Name: "labels", Type: "object"},
		{Name: "tags", Type: "array"},
	}
	if fmt.Sprint(ct.Fields) != fmt.Sprint(want) {
		t.Fatalf("fields:\n got %v\nwant %v", ct.Fields, want)
	}
	if len(d.Routes) != 2 || d.Routes[0].Prefix != "/demo/" {
		t.Fatalf("routes: %+v", d.Routes)
	}
}

func TestSyncEmitsInBatches(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	h.Serve("https://example.org/MANIFEST", manifest(1200))
	resp, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: "https://example.org/MANIFEST", Policy: abi.PolicyOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Emitted) != 1201 || h.Batches != 3 {
		t.Fatalf("emitted %d units in %d batches, want 1201 in 3", len(h.Emitted), h.Batches)
	}
	first := h.Emitted[0]
	if first.Type != "demo.file" || !first.Artifacts[0].Deferred || first.Artifacts[0].Size != 0 ||
		string(first.Fields) != `{"relative_path":"dir/f0000.txt","digest":"`+fmt.Sprintf("%064x", 0)+`","labels":null}` {
		t.Fatalf("first unit: %+v %s", first, first.Fields)
	}
	tag := h.Emitted[1200]
	if tag.Type != "demo.tag" || tag.Relations[0].To.Type != "demo.file" ||
		string(tag.Relations[0].To.Key) != `{"digest":"`+fmt.Sprintf("%064x", 1199)+`","relative_path":"dir/f1199.txt"}` {
		t.Fatalf("tag: %+v %s", tag, tag.Relations[0].To.Key)
	}
	if len(resp.Metadata) != 1 || resp.Metadata[0].RelativePath != "MANIFEST" || !strings.HasPrefix(resp.Metadata[0].Path, h.InDir()) {
		t.Fatalf("metadata: %+v", resp.Metadata)
	}
	if !strings.Contains(string(resp.Details), `"sha256":"`) {
		t.Fatalf("details: %s", resp.Details)
	}
	if len(h.Reports) != 1 || h.Reports[0].Done != 1200 {
		t.Fatalf("progress: %+v", h.Reports)
	}
	if len(h.Logs) != 1 || h.Logs[0].Level != "info" || h.Logs[0].Attrs["size"] != float64(len(manifest(1200))) {
		t.Fatalf("logs: %+v", h.Logs)
	}
}

func TestSyncErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(h *sdktest.Host) abi.SyncRequest
		code  string
		msg   string
	}{
		{"upstream 404", func(h *sdktest.Host) abi.SyncRequest {
			return abi.SyncRequest{Remote: abi.Remote{URL: "https://example.org/none"}}
		}, abi.CodeInternal, "fetch https://example.org/none: status 404"},
		{"plugin error code kept", func(h *sdktest.Host) abi.SyncRequest {
			return abi.SyncRequest{Options: []byte(`{"fail":true}`)}
		}, abi.CodeInvalidInput, "asked to: option fail is set"},
		{"bad options", func(h *sdktest.Host) abi.SyncRequest {
			return abi.SyncRequest{Options: []byte(`{"fail":"yes"}`)}
		}, abi.CodeInvalidInput, "sync options"},
		{"cancelled", func(h *sdktest.Host) abi.SyncRequest {
			h.Cancel = true
			return abi.SyncRequest{Remote: abi.Remote{URL: "https://example.org/MANIFEST"}}
		}, abi.CodeCancelled, "task cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			h.Serve("https://example.org/MANIFEST", manifest(3))
			_, err := h.Sync(tt.setup(h))
			var ae *abi.Error
			if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) {
				t.Fatalf("Sync() = %v, want %s containing %q", err, tt.code, tt.msg)
			}
		})
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	content := []abi.Content{
		{Type: "demo.file", Fields: []byte(`{"relative_path":"a","digest":"aa"}`), Artifacts: []abi.ContentArtifact{{RelativePath: "a", SHA256: "aa", Size: 1}}},
		{Type: "demo.file", Fields: []byte(`{"relative_path":"b","digest":"bb"}`), Artifacts: []abi.ContentArtifact{{RelativePath: "b", SHA256: "bb", Size: 2}}},
	}
	resp, err := h.Publish(abi.PublishRequest{Version: 1}, content)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.PassThrough || len(resp.Metadata) != 1 {
		t.Fatalf("response: %+v", resp)
	}
	b, err := os.ReadFile(resp.Metadata[0].Path)
	if err != nil || string(b) != "a,aa,1\nb,bb,2\n" {
		t.Fatalf("manifest: %q %v", b, err)
	}
	arts, err := os.ReadFile(resp.ArtifactsPath)
	if err != nil || strings.Count(string(arts), "\n") != 2 || !strings.Contains(string(arts), `{"relative_path":"by-digest/bb","sha256":"bb"}`) {
		t.Fatalf("published artifacts: %q %v", arts, err)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	h.Content = []abi.Content{{Type: "demo.tag", Fields: []byte(`{"name":"latest"}`)}}
	tests := []struct {
		path   string
		status int
		body   string
		code   string
	}{
		{"/demo/x", 200, `{"path":"/demo/x","query":"q=1"}`, ""},
		{"/demo/deep/x", 204, "", ""},
		{"/demo/lookup", 200, `[{"type":"demo.tag","fields":{"name":"latest"}}]`, ""},
		{"/demo/missing", 0, "", abi.CodeNotFound},
		{"/demo/panic", 0, "", abi.CodeInternal},
		{"/other/", 0, "", abi.CodeNotFound},
	}
	for _, tt := range tests {
		resp, err := h.Route(abi.RouteRequest{Method: "GET", Path: tt.path, Query: "q=1"})
		if tt.code != "" {
			if !errors.Is(err, abi.NewError(tt.code, "")) {
				t.Errorf("%s: err = %v, want code %s", tt.path, err, tt.code)
			}
			continue
		}
		if err != nil || resp.Status != tt.status || string(resp.Body) != tt.body {
			t.Errorf("%s: %d %s %v", tt.path, resp.Status, resp.Body, err)
		}
	}
	_, err := h.Route(abi.RouteRequest{Path: "/demo/panic"})
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Errorf("panic message: %v", err)
	}
}

func TestRef(t *testing.T) {
	t.Parallel()
	r, err := sdk.Ref("other.thing", map[string]int{"id": 7})
	if err != nil || r.Type != "other.thing" || string(r.Key) != `{"id":7}` {
		t.Fatalf("Ref() = %+v %v", r, err)
	}
	if _, err := sdk.Ref("other.thing", 7); err == nil {
		t.Fatal("Ref accepted a non-object key")
	}
}

// TestMarkerMatchesABI keeps the literal marker export in exports_wasip1.go in step with the
// version of package abi.
func TestMarkerMatchesABI(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("exports_wasip1.go")
	if err != nil {
		t.Fatal(err)
	}
	if want := "//go:wasmexport " + abi.Current().Marker() + "\n"; !strings.Contains(string(b), want) {
		t.Fatalf("exports_wasip1.go lacks %q", want)
	}
}

// TestImports enforces the dependency rule: sdk imports only abi and the standard library,
// natively and for wasip1.
func TestImports(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, goos := range []string{"", "wasip1"} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".", "./sdktest")
		if goos != "" {
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			if p != "github.com/pulpo/pulpo/abi" && !strings.HasPrefix(p, "github.com/pulpo/pulpo/sdk") {
				t.Errorf("GOOS=%s: sdk depends on %s", goos, p)
			}
		}
	}
}

// ReadArtifact goes through artifact_read with the host's rules: bounded, not_found for
// bytes the host does not store.
func TestReadArtifact(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	sha := h.StoreBlob([]byte("0123456789"))
	read := func(query string) (string, error) {
		resp, err := h.Route(abi.RouteRequest{Method: "GET", Path: "/demo/read", Query: query})
		return string(resp.Body), err
	}
	for _, tt := range []struct{ query, want, code string }{
		{"sha256=" + sha, `{"data":"0123456789","size":10}`, ""},
		{"sha256=" + sha + "&offset=3&length=4", `{"data":"3456","size":10}`, ""},
		{"sha256=" + sha + "&offset=8&length=4", `{"data":"89","size":10}`, ""},
		{"sha256=" + sha + "&offset=11", "", abi.CodeInvalidInput},
		{"sha256=" + sha + "&length=" + strconv.Itoa(abi.MaxArtifactReadBytes+1), "", abi.CodeLimitExceeded},
		{"sha256=" + strings.Repeat("0", 64), "", abi.CodeNotFound},
		{"sha256=XYZ", "", abi.CodeInvalidInput},
	} {
		got, err := read(tt.query)
		if tt.code != "" {
			if !errors.Is(err, abi.NewError(tt.code, "")) {
				t.Errorf("%s: %v, want code %s", tt.query, err, tt.code)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.query, got, err, tt.want)
		}
	}
}
