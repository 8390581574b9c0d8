package content

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// lazyDist serves files from a repository under base and returns their
// content artifacts.
func (e *env) lazyDist(base string, files ...file) map[string]uuid.UUID {
	e.t.Helper()
	repo, _, cas := e.repo(files...)
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: base, RepositoryID: &repo.ID})
	return cas
}

// saved reports the artifact a content artifact got, if any.
func (e *env) saved(ca uuid.UUID) *db.Artifact {
	a, err := e.db.StoredArtifactOf(e.ctx, ca)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return &a
}

// getBroken GETs path and expects no complete 200: either the transfer
// breaks (the body ends early with an error) or, when the download failed
// before the response began, an error status.
func (e *env) getBroken(path string, full int) []byte {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		return nil // cut before the headers: also no wrong body
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	if err == nil {
		e.t.Fatalf("GET %s: complete 200 response of %d bytes, want a broken transfer", path, len(got))
	}
	if len(got) >= full {
		e.t.Fatalf("GET %s: got all %d bytes before the break", path, len(got))
	}
	return got
}

func TestOnDemandStreamsAndSaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(300_000, 3) // more than one copy buffer
	e.up.set("/big.bin", route{body: body})
	cas := e.lazyDist("d", file{path: "big.bin", body: body, remotes: []*db.Remote{e.remote("on_demand")}})
	etag := `"` + sum(body) + `"`

	resp, got := e.do(http.MethodHead, "/pulp/content/d/big.bin")
	if resp.StatusCode != 200 || len(got) != 0 || resp.Header.Get("Content-Length") != "300000" || resp.Header.Get("ETag") != etag {
		t.Fatalf("HEAD %d %v", resp.StatusCode, resp.Header)
	}
	e.want("/pulp/content/d/big.bin", 304, "", "If-None-Match", etag)
	if n := e.up.count("/big.bin"); n != 0 {
		t.Fatalf("HEAD and 304 fetched %d times", n)
	}

	resp = e.want("/pulp/content/d/big.bin", 200, string(body))
	if resp.Header.Get("Content-Length") != "300000" || resp.Header.Get("ETag") != etag || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("streamed headers %v", resp.Header)
	}
	e.eventually("artifact saved", func() bool { return e.saved(cas["big.bin"]) != nil })
	if a := e.saved(cas["big.bin"]); a.SHA256 != sum(body) || a.Size != int64(len(body)) || a.SHA512 == nil || a.MD5 != nil {
		t.Fatalf("saved artifact %+v", a)
	}
	resp = e.want("/pulp/content/d/big.bin", 200, string(body))
	if resp.Header.Get("Last-Modified") == "" { // ServeContent of the stored file
		t.Fatalf("second GET not served from storage: %v", resp.Header)
	}
	e.want("/pulp/content/d/big.bin", 206, string(body[5:10]), "Range", "bytes=5-9")
	if n := e.up.count("/big.bin"); n != 1 {
		t.Fatalf("upstream fetched %d times", n)
	}
	e.consistent()
}

func TestStreamedSavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(100_000, 4)
	e.up.set("/s.bin", route{body: body})
	cas := e.lazyDist("d", file{path: "s.bin", body: body, remotes: []*db.Remote{e.remote("streamed")}, noSize: true})
	for range 2 {
		resp := e.want("/pulp/content/d/s.bin", 200, string(body))
		if resp.Header.Get("Content-Length") != "" { // unknown size: chunked
			t.Fatalf("Content-Length %q", resp.Header.Get("Content-Length"))
		}
	}
	// Ranges of unknown size wait for the download.
	e.want("/pulp/content/d/s.bin", 206, string(body[10:20]), "Range", "bytes=10-19")
	if n := e.up.count("/s.bin"); n != 3 {
		t.Fatalf("upstream fetched %d times, want once per request", n)
	}
	if e.saved(cas["s.bin"]) != nil || e.artifactCount() != 0 {
		t.Fatal("streamed content was saved")
	}
	e.consistent()
}

func TestConcurrentRequestsShareOneDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(1<<20, 5)
	gate := make(chan struct{})
	e.up.set("/one.bin", route{serve: slowly(body, 64<<10, time.Millisecond, gate)})
	cas := e.lazyDist("d", file{path: "one.bin", body: body, remotes: []*db.Remote{e.remote("on_demand")}})

	const clients = 30
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			resp, err := http.Get(e.srv.URL + "/pulp/content/d/one.bin")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, body) {
				errs <- errors.Join(errors.New("wrong body"), err)
			}
		})
	}
	// Everyone is in before the upstream gets past its first chunk.
	e.eventually("all clients joined", func() bool {
		e.h.fetcher.mu.Lock()
		defer e.h.fetcher.mu.Unlock()
		fl := e.h.fetcher.flights[cas["one.bin"]]
		if fl == nil {
			return false
		}
		fl.mu.Lock()
		defer fl.mu.Unlock()
		return fl.readers == clients
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := e.up.count("/one.bin"); n != 1 {
		t.Fatalf("%d upstream downloads for %d clients", n, clients)
	}
	e.eventually("artifact saved", func() bool { return e.saved(cas["one.bin"]) != nil })
	e.consistent()
}

func TestClientDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(1<<20, 6)
	for _, policy := range []string{"on_demand", "streamed"} {
		gate := make(chan struct{})
		path := "/" + policy + ".bin"
		e.up.set(path, route{serve: slowly(body, 32<<10, 0, gate)})
		cas := e.lazyDist(policy, file{path: policy + ".bin", body: body, remotes: []*db.Remote{e.remote(policy)}})

		resp, err := http.Get(e.srv.URL + "/pulp/content/" + policy + path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // gone halfway
		if policy == "on_demand" {
			close(gate)
			e.eventually("saved after the client left", func() bool { return e.saved(cas[policy+".bin"]) != nil })
			e.want("/pulp/content/on_demand/on_demand.bin", 200, string(body))
			if n := e.up.count(path); n != 1 {
				t.Fatalf("on_demand: %d upstream downloads", n)
			}
		} else {
			// Nobody reads a download that is not saved: it stops.
			e.eventually("streamed download stopped", func() bool {
				e.h.fetcher.mu.Lock()
				defer e.h.fetcher.mu.Unlock()
				return len(e.h.fetcher.flights) == 0
			})
			close(gate)
			if e.saved(cas[policy+".bin"]) != nil {
				t.Fatal("streamed content saved")
			}
		}
	}
	if e.artifactCount() != 1 {
		t.Fatalf("%d artifacts", e.artifactCount())
	}
	e.consistent()
}

func TestWrongBytesCutTheConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(200_000, 7)
	wrong := bytes.Clone(body)
	wrong[len(wrong)-1] ^= 0xff // only the last byte differs
	// Slowly, so the response is under way when the digest fails.
	e.up.set("/bad/f.bin", route{serve: slowly(wrong, 32<<10, 5*time.Millisecond, nil)})
	e.up.set("/good/f.bin", route{body: body})
	bad := e.remote("on_demand", func(r *db.Remote) { r.URL = e.up.srv.URL + "/bad/" })
	good := e.remote("on_demand", func(r *db.Remote) { r.URL = e.up.srv.URL + "/good/" })
	cas := e.lazyDist("d", file{path: "f.bin", body: body, remotes: []*db.Remote{bad, good}})

	got := e.getBroken("/pulp/content/d/f.bin", len(body))
	if len(got) == 0 || !bytes.Equal(got, body[:len(got)]) {
		t.Fatalf("want a transfer of a correct prefix cut short, got %d bytes", len(got))
	}
	if e.saved(cas["f.bin"]) != nil || e.artifactCount() != 0 {
		t.Fatal("bytes failing their digest were saved")
	}
	e.eventually("download ended", func() bool { return e.up.count("/bad/f.bin") == 1 && len(e.tmpFiles()) == 0 })
	srcs, err := e.db.RemoteSources(e.ctx, cas["f.bin"], time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The failed remote is now tried last.
	if srcs[0].Remote.ID != good.ID || srcs[1].FailedAt == nil {
		t.Fatalf("sources after the failure: %+v", srcs)
	}
	e.want("/pulp/content/d/f.bin", 200, string(body))
	if e.up.count("/bad/f.bin") != 1 || e.up.count("/good/f.bin") != 1 {
		t.Fatalf("fetches: bad %d good %d", e.up.count("/bad/f.bin"), e.up.count("/good/f.bin"))
	}
	e.eventually("artifact saved", func() bool { return e.saved(cas["f.bin"]) != nil })
	e.consistent()
}

func TestRemoteFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(100_000, 8)
	quick := func(r *db.Remote) {
		d := 0.3
		r.SockReadTimeout = &d
	}
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	e.up.set("/hang-headers", route{serve: hang})
	e.up.set("/hang-body", route{serve: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(body[:40_000])
		w.(http.Flusher).Flush()
		hang(w, r)
	}})
	e.up.set("/close-early", route{serve: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(body[:40_000]) // the server closes: fewer bytes than declared
	}})
	e.up.set("/longer-declared", route{body: append(bytes.Clone(body), 'x')})
	e.up.set("/longer", route{serve: func(w http.ResponseWriter, r *http.Request) {
		w.Write(body) // chunked: the extra byte shows only at the end
		w.(http.Flusher).Flush()
		w.Write([]byte("x"))
	}})
	e.up.set("/good", route{body: body})
	r := e.remote("on_demand", quick)
	missing := e.remote("on_demand", func(x *db.Remote) { x.URL = e.up.srv.URL + "/nothing-here/" })
	cas := e.lazyDist("d",
		file{path: "hang-headers", body: body, remotes: []*db.Remote{r}},
		file{path: "hang-body", body: body, remotes: []*db.Remote{r}},
		file{path: "close-early", body: body, remotes: []*db.Remote{r}},
		file{path: "longer", body: body, remotes: []*db.Remote{r}},
		file{path: "longer-declared", body: body, remotes: []*db.Remote{r}},
		file{path: "good", body: body, remotes: []*db.Remote{missing, r}}, // a 404 first, then a source that works
	)

	// Failures before the first byte: a 404, as Pulp answers.
	for _, p := range []string{"hang-headers", "longer-declared"} {
		start := time.Now()
		resp, msg := e.get("/pulp/content/d/" + p)
		if resp.StatusCode != 404 || !strings.Contains(string(msg), "could not be fetched") || time.Since(start) > 5*time.Second {
			t.Fatalf("%s: %d %q after %v", p, resp.StatusCode, msg, time.Since(start))
		}
	}
	for _, p := range []string{"hang-body", "close-early", "longer"} {
		got := e.getBroken("/pulp/content/d/"+p, len(body))
		if !bytes.Equal(got, body[:len(got)]) {
			t.Fatalf("%s: wrong bytes before the break", p)
		}
	}
	e.want("/pulp/content/d/good", 200, string(body))
	e.eventually("artifact saved", func() bool { return e.saved(cas["good"]) != nil })
	for _, p := range []string{"hang-headers", "hang-body", "close-early", "longer", "longer-declared"} {
		if e.saved(cas[p]) != nil {
			t.Fatalf("%s saved", p)
		}
	}
	if e.artifactCount() != 1 {
		t.Fatalf("%d artifacts", e.artifactCount())
	}
	e.consistent()
}

func TestRangesOfMissingContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := payload(4<<20, 9)
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	defer open()
	// Whole-file downloads crawl until the gate opens; ranges are quick.
	crawl := slowly(body, 64<<10, 0, gate)
	e.up.set("/far.bin", route{serve: func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
			return
		}
		crawl(w, r)
	}})
	for _, p := range []string{"/near.bin", "/multi.bin", "/streamed.bin", "/saved.bin"} {
		e.up.set(p, route{body: body})
	}
	od, st := e.remote("on_demand"), e.remote("streamed")
	cas := e.lazyDist("d",
		file{path: "far.bin", body: body, remotes: []*db.Remote{od}},
		file{path: "near.bin", body: body, remotes: []*db.Remote{od}},
		file{path: "multi.bin", body: body, remotes: []*db.Remote{od}},
		file{path: "streamed.bin", body: body, remotes: []*db.Remote{st}},
		file{path: "saved.bin", body: body, remotes: []*db.Remote{od}},
	)

	// Far into a file nobody downloaded: the remote is asked for the range
	// while the whole file downloads (slowly) to be saved.
	resp := e.want("/pulp/content/d/far.bin", 206, string(body[3_000_000:3_000_100]), "Range", "bytes=3000000-3000099")
	if resp.Header.Get("Content-Range") != "bytes 3000000-3000099/4194304" || resp.Header.Get("Content-Length") != "100" {
		t.Fatalf("range headers %v", resp.Header)
	}
	if rs := e.up.rangesOf("/far.bin"); len(rs) != 1 || rs[0] != "bytes=3000000-3000099" {
		t.Fatalf("upstream ranges %v", rs)
	}
	e.eventually("the whole far.bin requested too", func() bool { return e.up.count("/far.bin") == 2 })

	// Near the start: out of the download itself, which is then saved.
	e.want("/pulp/content/d/near.bin", 206, string(body[:100]), "Range", "bytes=0-99")
	e.eventually("near.bin saved", func() bool { return e.saved(cas["near.bin"]) != nil })
	if e.up.count("/near.bin") != 1 || len(e.up.rangesOf("/near.bin")) != 0 {
		t.Fatalf("near.bin: %d fetches, ranges %v", e.up.count("/near.bin"), e.up.rangesOf("/near.bin"))
	}

	// Several ranges wait for the whole file.
	resp, got := e.get("/pulp/content/d/multi.bin", "Range", "bytes=0-9,4000000-4000009")
	if parts := multipartBodies(t, resp, got); len(parts) != 2 || parts[0] != string(body[:10]) || parts[1] != string(body[4_000_000:4_000_010]) {
		t.Fatalf("multi-range %d %q", resp.StatusCode, parts)
	}

	// Unsatisfiable or malformed ranges are refused without a download.
	for _, rg := range []string{"bytes=4194304-", "bytes=0-99999999999999999999", "bytes=x", "bytes=9-1"} {
		resp = e.want("/pulp/content/d/saved.bin", 416, "", "Range", rg)
		if resp.Header.Get("Content-Range") != "bytes */4194304" {
			t.Fatalf("%s: Content-Range %q", rg, resp.Header.Get("Content-Range"))
		}
	}
	if e.up.count("/saved.bin") != 0 {
		t.Fatal("a refused range downloaded")
	}

	// Streamed: the range only, nothing saved.
	e.want("/pulp/content/d/streamed.bin", 206, string(body[2_000_000:2_000_010]), "Range", "bytes=2000000-2000009")
	if e.up.count("/streamed.bin") != 1 || len(e.up.rangesOf("/streamed.bin")) != 1 || e.saved(cas["streamed.bin"]) != nil {
		t.Fatalf("streamed range: %d fetches", e.up.count("/streamed.bin"))
	}

	// The whole far.bin arrives in the end and is saved (Pulp's #3060).
	open()
	e.eventually("far.bin saved", func() bool { return e.saved(cas["far.bin"]) != nil })
	e.want("/pulp/content/d/far.bin", 200, string(body))
	e.consistent()
}
