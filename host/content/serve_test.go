package content

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/db"
)

func TestServeStoredFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(10000, 1)
	repo, _, _ := e.repo(file{path: "dir/data.json", body: body, stored: true}, file{path: "x.unknownext", body: []byte("x"), stored: true})
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "files", RepositoryID: &repo.ID})
	etag := `"` + sum(body) + `"`

	resp := e.want("/pulp/content/files/dir/data.json", 200, string(body))
	h := resp.Header
	if h.Get("Content-Type") != "application/json" || h.Get("Content-Length") != "10000" || h.Get("ETag") != etag ||
		h.Get("Last-Modified") == "" || h.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("headers %v", h)
	}
	if ct := e.want("/pulp/content/files/x.unknownext", 200, "x").Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Fatalf("unknown extension: %s", ct)
	}
	resp, got := e.do(http.MethodHead, "/pulp/content/files/dir/data.json")
	if resp.StatusCode != 200 || len(got) != 0 || resp.Header.Get("Content-Length") != "10000" {
		t.Fatalf("HEAD %d %v", resp.StatusCode, resp.Header)
	}

	// Conditional requests.
	e.want("/pulp/content/files/dir/data.json", 304, "", "If-None-Match", etag)
	e.want("/pulp/content/files/dir/data.json", 200, string(body), "If-None-Match", `"other"`)
	e.want("/pulp/content/files/dir/data.json", 304, "", "If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))

	// Ranges: one, several, unsatisfiable, malformed, too many.
	resp = e.want("/pulp/content/files/dir/data.json", 206, string(body[100:200]), "Range", "bytes=100-199")
	if resp.Header.Get("Content-Range") != "bytes 100-199/10000" {
		t.Fatalf("Content-Range %q", resp.Header.Get("Content-Range"))
	}
	e.want("/pulp/content/files/dir/data.json", 206, string(body[9990:]), "Range", "bytes=-10")
	resp, got = e.get("/pulp/content/files/dir/data.json", "Range", "bytes=0-9,5000-5009")
	parts := multipartBodies(t, resp, got)
	if resp.StatusCode != 206 || len(parts) != 2 || parts[0] != string(body[:10]) || parts[1] != string(body[5000:5010]) {
		t.Fatalf("multipart %d %q", resp.StatusCode, parts)
	}
	resp = e.want("/pulp/content/files/dir/data.json", 416, "", "Range", "bytes=10000-")
	if resp.Header.Get("Content-Range") != "bytes */10000" {
		t.Fatalf("416 Content-Range %q", resp.Header.Get("Content-Range"))
	}
	for _, bad := range []string{"bytes=abc", "bytes=5-1", "bytes=0-99999999999999999999999", "bytes=--1", "items=0-1", "bytes=" + strings.Repeat("9", 5000) + "-"} {
		e.want("/pulp/content/files/dir/data.json", 416, "", "Range", bad)
	}
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 1000), ",")
	e.want("/pulp/content/files/dir/data.json", 200, string(body), "Range", many)
	e.want("/pulp/content/files/dir/data.json", 200, string(body), "Range", "bytes=0-1", "If-Range", `"stale"`)

	resp, _ = e.do(http.MethodPost, "/pulp/content/files/dir/data.json")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST %d %v", resp.StatusCode, resp.Header)
	}
}

func multipartBodies(t *testing.T, resp *http.Response, body []byte) []string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		out = append(out, string(b))
	}
}

func TestResolution(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := file{path: "a.txt", body: []byte("a1"), stored: true}
	repo, v1, _ := e.repo(a, file{path: "sub/b.txt", body: []byte("b1"), stored: true})
	v2 := e.version(repo, file{path: "a.txt", body: []byte("a2"), stored: true})

	// A repository distribution of a plain type serves its latest version.
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "latest", RepositoryID: &repo.ID})
	e.want("/pulp/content/latest/a.txt", 200, "a2")
	e.want("/pulp/content/latest/sub/b.txt", 404, "")
	// A fixed version.
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "pinned/v1", RepositoryVersionID: &v1.ID})
	e.want("/pulp/content/pinned/v1/a.txt", 200, "a1")
	e.want("/pulp/content/pinned/v1/sub/b.txt", 200, "b1")

	// A type served from publications serves none until one is complete.
	e.distribution(db.Distribution{BasePath: "pub", RepositoryID: &repo.ID})
	resp, body := e.get("/pulp/content/pub/a.txt")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "serves nothing") {
		t.Fatalf("no publication: %d %s", resp.StatusCode, body)
	}
	e.publication(v2, true, map[string][]byte{"PULP_MANIFEST": []byte("manifest")}, false)
	e.want("/pulp/content/pub/a.txt", 404, "")
	e.publication(v2, true, map[string][]byte{"PULP_MANIFEST": []byte("manifest v2")}, true)
	e.want("/pulp/content/pub/PULP_MANIFEST", 200, "manifest v2")
	e.want("/pulp/content/pub/a.txt", 200, "a2") // pass-through
	// A publication of an older version, without pass-through: its metadata only.
	old := e.publication(v1, false, map[string][]byte{"PULP_MANIFEST": []byte("manifest v1")}, true)
	e.distribution(db.Distribution{BasePath: "pub-old", PublicationID: &old.ID})
	e.want("/pulp/content/pub-old/PULP_MANIFEST", 200, "manifest v1")
	e.want("/pulp/content/pub-old/a.txt", 404, "")
	// A fixed version served from publications uses its latest publication.
	e.distribution(db.Distribution{BasePath: "pub-v1", RepositoryVersionID: &v1.ID})
	e.want("/pulp/content/pub-v1/PULP_MANIFEST", 200, "manifest v1")

	// The longest base path wins, at segment boundaries only.
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "pinned", RepositoryID: &repo.ID})
	e.want("/pulp/content/pinned/a.txt", 200, "a2")
	e.want("/pulp/content/pinned/v1/a.txt", 200, "a1")
	e.want("/pulp/content/pinned/v1x/a.txt", 404, "")

	// Directories: redirects, listings, 404s with a body.
	for from, to := range map[string]string{"/pulp/content/pinned": "/pulp/content/pinned/", "/pulp/content/pinned/v1/sub": "/pulp/content/pinned/v1/sub/"} {
		resp := e.want(from, 301, "")
		if resp.Header.Get("Location") != to {
			t.Fatalf("%s redirects to %q", from, resp.Header.Get("Location"))
		}
	}
	resp, body = e.get("/pulp/content/nope/file")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "/pulp/content/nope/file not found") {
		t.Fatalf("missing: %d %s", resp.StatusCode, body)
	}
}

func TestListings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.remote("on_demand")
	repo, v, _ := e.repo(
		file{path: "b.txt", body: []byte("bbb"), stored: true},
		file{path: "a.txt", body: []byte("a"), remotes: []*db.Remote{r}},
		file{path: "dir/c.txt", body: []byte("c"), stored: true},
		file{path: `we<ird>:name`, body: []byte("w"), stored: true},
	)
	e.publication(v, true, map[string][]byte{"PULP_MANIFEST": []byte("m")}, true)
	e.distribution(db.Distribution{BasePath: "top/one", RepositoryID: &repo.ID})
	e.distribution(db.Distribution{BasePath: "top/two", RepositoryID: &repo.ID})
	e.distribution(db.Distribution{BasePath: "alpha", RepositoryID: &repo.ID})
	e.distribution(db.Distribution{BasePath: "secret/hidden", RepositoryID: &repo.ID, Hidden: true})

	_, root := e.get("/pulp/content/")
	if got := hrefs(string(root)); got != "alpha/ top/" {
		t.Fatalf("root listing %q:\n%s", got, root)
	}
	_, top := e.get("/pulp/content/top/")
	if got := hrefs(string(top)); got != "../ one/ two/" {
		t.Fatalf("top listing %q", got)
	}
	e.want("/pulp/content/top", 301, "")
	e.want("/pulp/content/secret/", 404, "")
	e.want("/pulp/content/secret/hidden/b.txt", 200, "bbb") // hidden, not unreachable

	resp, page := e.get("/pulp/content/alpha/")
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("listing type %q", resp.Header.Get("Content-Type"))
	}
	if got := hrefs(string(page)); got != "../ PULP_MANIFEST a.txt b.txt dir/ ./we%3Cird%3E:name" {
		t.Fatalf("distribution listing %q:\n%s", got, page)
	}
	for _, want := range []string{"Index of /pulp/content/alpha/", "we&lt;ird&gt;:name", "   3\n", "   1\n"} {
		if !strings.Contains(string(page), want) {
			t.Fatalf("listing lacks %q:\n%s", want, page)
		}
	}
	if e.up.count("/a.txt") != 0 {
		t.Fatal("listing fetched an on-demand file")
	}
	_, sub := e.get("/pulp/content/alpha/dir/")
	if got := hrefs(string(sub)); got != "../ c.txt" {
		t.Fatalf("subdirectory listing %q", got)
	}
	e.want("/pulp/content/alpha/nodir/", 404, "")

	// A published index.html replaces the listing.
	e.publication(v, true, map[string][]byte{"index.html": []byte("<p>hi</p>"), "dir/index.html": []byte("dir index")}, true)
	e.want("/pulp/content/alpha/", 200, "<p>hi</p>")
	e.want("/pulp/content/alpha/dir/", 200, "dir index")
}

// hrefs lists the link targets of a listing page, space-separated.
func hrefs(page string) string {
	var out []string
	for _, part := range strings.Split(page, `<a href="`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return strings.Join(out, " ")
}

func TestBadPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	repo, _, _ := e.repo(file{path: "a/b.txt", body: []byte("b"), stored: true})
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "d", RepositoryID: &repo.ID})
	// Straight to the handler: the mux would clean some of these first.
	direct := func(target string) int {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Code
	}
	for _, p := range []string{
		"/pulp/content/d/a/../a/b.txt", "/pulp/content/d/./a/b.txt", "/pulp/content/d/a//b.txt",
		"/pulp/content/d/a%2Fb.txt", "/pulp/content/d/a%2fb.txt", "/pulp/content/d/a%5Cb.txt", "/pulp/content/d/a\\b.txt",
		"/pulp/content/d/a/b.txt%00", "/pulp/content/d/%2e%2e/%2e%2e/etc/passwd", "/pulp/content/d/a/%ff",
		"/pulp/content/" + strings.Repeat("x/", 3000),
	} {
		if got := direct(p); got != 400 {
			t.Errorf("%q: %d, want 400", p, got)
		}
	}
	if got := direct("/pulp/content/d/a/b.txt"); got != 200 {
		t.Fatalf("clean path: %d", got)
	}
	// Through the server, traversal never reaches a file either.
	for _, p := range []string{"/pulp/content/d/../d/a/b.txt", "/pulp/content/d/a%2Fb.txt", "/pulp/content/../../etc/passwd"} {
		resp, body := e.get(p)
		if resp.StatusCode == 200 {
			t.Fatalf("%s served %q", p, body)
		}
	}
}

// TestSenderCopiesWhileFewSend checks the choice between copying and sendfile:
// the first sends hide ReadFrom, those beyond half the CPUs keep it, and an
// ended send frees its place.
func TestSenderCopiesWhileFewSend(t *testing.T) {
	h := &Handler{}
	few := max(1, runtime.GOMAXPROCS(0)/2)
	var dones []func()
	for i := range few {
		w, done := h.sender(rfRecorder{httptest.NewRecorder()})
		dones = append(dones, done)
		if _, ok := w.(io.ReaderFrom); ok {
			t.Fatalf("send %d of %d keeps ReadFrom (sendfile)", i+1, few)
		}
	}
	w, done := h.sender(rfRecorder{httptest.NewRecorder()})
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Fatalf("send %d hides ReadFrom: want sendfile once %d are in flight", few+1, few)
	}
	done()
	dones[0]()
	w, done = h.sender(rfRecorder{httptest.NewRecorder()})
	defer done()
	if _, ok := w.(io.ReaderFrom); ok {
		t.Fatal("after two sends ended, a new one keeps ReadFrom")
	}
}

// rfRecorder has ReadFrom, as the server's ResponseWriter does.
type rfRecorder struct{ *httptest.ResponseRecorder }

func (r rfRecorder) ReadFrom(src io.Reader) (int64, error) { return io.Copy(r.ResponseRecorder, src) }
