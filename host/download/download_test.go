package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newD builds a Downloader with a fast back-off and a test logger.
func newD(t *testing.T, cfg Config, opts ...Option) *Downloader {
	t.Helper()
	opts = append([]Option{WithBackoff(time.Millisecond, 5*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))}, opts...)
	d, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func intp(n int) *int { return &n }

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// counted serves h and counts its requests.
func counted(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func serve(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.Write(b) }
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("%d files left in %s, want none", len(es), dir)
	}
}

func TestFetchToFileAllDigests(t *testing.T) {
	t.Parallel()
	b := body(1<<20 + 123)
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/file", http.StatusFound)
			return
		}
		w.Write(b)
	})
	d := newD(t, Config{}, WithChecksums("md5", "sha1"))
	s512 := sha512.Sum512(b)
	exp := Expect{Size: int64(len(b)), Digests: map[string]string{
		"sha256": strings.ToUpper(hexSum(b)), "sha512": hex.EncodeToString(s512[:])}}
	dir := t.TempDir()
	path, res, err := d.FetchToFile(t.Context(), Request{URL: srv.URL + "/moved", Expected: exp}, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, b) || filepath.Dir(path) != dir {
		t.Fatalf("file %s holds %d bytes", path, len(got))
	}
	if res.Size != int64(len(b)) || res.Status != 200 || res.URL != srv.URL+"/file" || res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("result %+v", res)
	}
	for _, n := range []string{"md5", "sha1", "sha256", "sha512"} {
		if len(res.Digests[n]) == 0 {
			t.Errorf("digest %s missing from %v", n, res.Digests)
		}
	}
	if len(res.Digests) != 4 || res.Digests["sha256"] != hexSum(b) {
		t.Fatalf("digests %v", res.Digests)
	}
}

func TestSizeMismatch(t *testing.T) {
	t.Parallel()
	b := body(1000)
	for name, h := range map[string]http.HandlerFunc{
		"content-length": serve(b),
		"chunked": func(w http.ResponseWriter, r *http.Request) {
			w.Write(b[:500])
			w.(http.Flusher).Flush()
			w.Write(b[500:])
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, n := counted(t, h)
			d := newD(t, Config{MaxRetries: intp(1)})
			dir := t.TempDir()
			_, _, err := d.FetchToFile(t.Context(), Request{URL: srv.URL + "/f", Expected: Expect{Size: 999}}, dir)
			var se *SizeError
			if !errors.As(err, &se) || se.Expected != 999 || se.Actual < 1000 || se.URL != srv.URL+"/f" {
				t.Fatalf("err = %v, want a SizeError", err)
			}
			if n.Load() != 2 {
				t.Fatalf("%d requests, want 2", n.Load())
			}
			assertEmpty(t, dir)
		})
	}
}

func TestDigestMismatchRetriedThenFails(t *testing.T) {
	t.Parallel()
	b := body(5000)
	srv, n := counted(t, serve(b))
	d := newD(t, Config{MaxRetries: intp(2)})
	dir := t.TempDir()
	want := strings.Repeat("ab", 32)
	u := srv.URL + "/pkg.rpm"
	_, _, err := d.FetchToFile(t.Context(), Request{URL: u, Expected: Expect{Size: 5000, Digests: map[string]string{"sha256": want}}}, dir)
	var de *DigestError
	if !errors.As(err, &de) || de.URL != u || de.Algorithm != "sha256" || de.Expected != want || de.Actual != hexSum(b) {
		t.Fatalf("err = %#v", err)
	}
	for _, s := range []string{u, want, hexSum(b), "after 3 attempts"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("%d requests, want 3 (1 + max_retries 2)", n.Load())
	}
	assertEmpty(t, dir)
}

func TestStatusRetries(t *testing.T) {
	t.Parallel()
	b := body(100)
	tests := []struct {
		name       string
		statuses   []int // answers before the body, in order
		maxRetries *int
		wantErr    int // HTTP status of the final error, 0 for success
		wantReqs   int64
	}{
		{"500 then 200", []int{500}, nil, 0, 2},
		{"503 twice then 200", []int{503, 502}, intp(2), 0, 3},
		{"404 is final", []int{404}, nil, 404, 1},
		{"401 is final", []int{401}, nil, 401, 1},
		{"500 always, default 3 retries", []int{500, 500, 500, 500, 500}, nil, 500, 4},
		{"no retries", []int{500}, intp(0), 500, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var i atomic.Int64
			srv, n := counted(t, func(w http.ResponseWriter, r *http.Request) {
				if k := int(i.Add(1)) - 1; k < len(tt.statuses) {
					http.Error(w, "no", tt.statuses[k])
					return
				}
				w.Write(b)
			})
			d := newD(t, Config{MaxRetries: tt.maxRetries})
			var buf bytes.Buffer
			_, err := d.Fetch(t.Context(), Request{URL: srv.URL + "/x"}, &buf)
			var he *HTTPError
			switch {
			case tt.wantErr == 0 && (err != nil || !bytes.Equal(buf.Bytes(), b)):
				t.Fatalf("err = %v, %d bytes", err, buf.Len())
			case tt.wantErr != 0 && (!errors.As(err, &he) || he.Status != tt.wantErr || he.URL != srv.URL+"/x"):
				t.Fatalf("err = %v, want HTTP %d", err, tt.wantErr)
			}
			if n.Load() != tt.wantReqs {
				t.Fatalf("%d requests, want %d", n.Load(), tt.wantReqs)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	var i atomic.Int64
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if i.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("ok"))
	})
	d := newD(t, Config{})
	start := time.Now()
	if _, err := d.Fetch(t.Context(), Request{URL: srv.URL}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 950*time.Millisecond || i.Load() != 2 {
		t.Fatalf("took %s over %d requests; want >= 1s over 2", el, i.Load())
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int64
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
		w.Write([]byte("x"))
	})
	d := newD(t, Config{DownloadConcurrency: 3})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := d.Fetch(t.Context(), Request{URL: srv.URL}, io.Discard); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if peak.Load() != 3 {
		t.Fatalf("peak %d requests in flight, want 3", peak.Load())
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv, n := counted(t, serve([]byte("x")))
	d := newD(t, Config{RateLimit: 50, DownloadConcurrency: 30})
	start := time.Now()
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if _, err := d.Fetch(t.Context(), Request{URL: srv.URL}, io.Discard); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 30 requests 20 ms apart: the last starts 580 ms after the first.
	if el := time.Since(start); el < 560*time.Millisecond || n.Load() != 30 {
		t.Fatalf("%d requests in %s, want 30 in >= 580ms", n.Load(), el)
	}
}

func TestBasicAuthAndRedaction(t *testing.T) {
	t.Parallel()
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			http.Error(w, "who?", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("secret stuff"))
	})
	d := newD(t, Config{Username: "alice", Password: "s3cret"})
	var buf bytes.Buffer
	if _, err := d.Fetch(t.Context(), Request{URL: srv.URL + "/a"}, &buf); err != nil || buf.String() != "secret stuff" {
		t.Fatalf("err = %v, body %q", err, buf.String())
	}
	_, err := newD(t, Config{}).Fetch(t.Context(), Request{URL: srv.URL + "/a"}, io.Discard)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("without credentials: %v", err)
	}
	// Credentials in the URL work and never show up in errors or results.
	withUser := strings.Replace(srv.URL, "http://", "http://alice:s3cret@", 1)
	res, err := newD(t, Config{}).Fetch(t.Context(), Request{URL: withUser + "/a"}, io.Discard)
	if err != nil || strings.Contains(res.URL, "s3cret") || strings.Contains(res.URL, "alice") {
		t.Fatalf("err = %v, url %q", err, res.URL)
	}
	_, err = newD(t, Config{}).Fetch(t.Context(), Request{URL: withUser + "/missing"}, io.Discard)
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "alice") {
		t.Fatalf("err = %v", err)
	}
	_, err = newD(t, Config{}).Fetch(t.Context(), Request{URL: "http://alice:s3cret@127.0.0.1:1/x"}, io.Discard)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("connection error leaks credentials: %v", err)
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() })
	d := newD(t, Config{
		UserAgent: "pulpo/test",
		Headers:   []map[string]string{{"X-One": "1", "User-Agent": "extra/2"}, {"X-Two": "2", "Accept": "a/b"}},
	})
	_, err := d.Fetch(t.Context(), Request{URL: srv.URL, Header: http.Header{"Accept": {"c/d"}}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"X-One": "1", "X-Two": "2", "Accept": "c/d", "User-Agent": "pulpo/test extra/2"} {
		if got.Get(k) != v || len(got.Values(k)) != 1 {
			t.Errorf("%s = %q, want %q", k, got.Values(k), v)
		}
	}
	if got.Get("Accept-Encoding") != "" {
		t.Errorf("Accept-Encoding %q sent: bodies must arrive as stored", got.Get("Accept-Encoding"))
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	b := body(10000)
	tests := map[string]struct {
		h          http.HandlerFunc
		rg         [2]int64
		wantStatus int
	}{
		"206": {func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(b))
		}, [2]int64{100, 199}, 206},
		"open end": {func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(b))
		}, [2]int64{9000, -1}, 206},
		"ignored range":   {serve(b), [2]int64{100, 199}, 200},
		"ignored, to end": {serve(b), [2]int64{9990, -1}, 200},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := counted(t, tt.h)
			end := tt.rg[1]
			if end < 0 {
				end = int64(len(b)) - 1
			}
			want := b[tt.rg[0] : end+1]
			d := newD(t, Config{})
			var buf bytes.Buffer
			rg := tt.rg
			res, err := d.Fetch(t.Context(), Request{URL: srv.URL, Range: &rg,
				Expected: Expect{Size: int64(len(want)), Digests: map[string]string{"sha256": hexSum(want)}}}, &buf)
			if err != nil || res.Status != tt.wantStatus || !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("err = %v, status %d, %d bytes", err, res.Status, buf.Len())
			}
		})
	}
}

// rewindBuffer is a Rewinder that counts its rewinds.
type rewindBuffer struct {
	bytes.Buffer
	rewinds int
}

func (r *rewindBuffer) Rewind() error { r.Reset(); r.rewinds++; return nil }

func TestFetchRetriesOnlyWhatItCanRewind(t *testing.T) {
	t.Parallel()
	b := body(300 << 10)
	var i atomic.Int64
	// The first answer is corrupt, the next ones are right.
	srv, n := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if i.Add(1) == 1 {
			w.Write(bytes.ToUpper(b))
			return
		}
		w.Write(b)
	})
	exp := Expect{Digests: map[string]string{"sha256": hexSum(b)}}
	d := newD(t, Config{})
	var plain bytes.Buffer
	_, err := d.Fetch(t.Context(), Request{URL: srv.URL, Expected: exp}, &plain)
	var de *DigestError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "no retry") || n.Load() != 1 {
		t.Fatalf("plain writer: err = %v after %d requests", err, n.Load())
	}
	i.Store(0)
	var rw rewindBuffer
	if _, err := d.Fetch(t.Context(), Request{URL: srv.URL, Expected: exp}, &rw); err != nil {
		t.Fatal(err)
	}
	if rw.rewinds != 1 || !bytes.Equal(rw.Bytes(), b) {
		t.Fatalf("%d rewinds, %d bytes", rw.rewinds, rw.Len())
	}
}

func TestCancelRemovesPartialFile(t *testing.T) {
	t.Parallel()
	sent := make(chan struct{})
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		w.Write(body(1 << 20))
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done()
	})
	d := newD(t, Config{})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-sent; time.Sleep(50 * time.Millisecond); cancel() }()
	_, _, err := d.FetchToFile(ctx, Request{URL: srv.URL}, dir)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertEmpty(t, dir)
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall-body" {
			w.Header().Set("Content-Length", "2000")
			w.Write(body(1000))
			w.(http.Flusher).Flush()
		}
		select { // stall
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name, path, phase string
		cfg               Config
	}{
		{"sock_read mid-body", "/stall-body", "sock_read_timeout", Config{SockReadTimeout: 150 * time.Millisecond}},
		{"sock_read before headers", "/stall-headers", "sock_read_timeout", Config{SockReadTimeout: 150 * time.Millisecond}},
		{"total", "/stall-body", "total_timeout", Config{TotalTimeout: 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.MaxRetries = intp(1)
			d := newD(t, cfg)
			dir := t.TempDir()
			start := time.Now()
			_, _, err := d.FetchToFile(t.Context(), Request{URL: srv.URL + tt.path}, dir)
			el := time.Since(start)
			var te *TimeoutError
			var ne interface{ Timeout() bool }
			if tt.phase != "" && (!errors.As(err, &te) || te.Phase != tt.phase || te.URL != srv.URL+tt.path) {
				t.Fatalf("err = %v, want a %s TimeoutError", err, tt.phase)
			}
			if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "after 2 attempts") {
				t.Fatalf("err = %v, want a timeout after 2 attempts", err)
			}
			if el > 2*time.Second {
				t.Fatalf("took %s", el)
			}
			assertEmpty(t, dir)
		})
	}
}

func TestFileURL(t *testing.T) {
	t.Parallel()
	b := body(70000)
	dir := t.TempDir()
	p := filepath.Join(dir, "a file.bin")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newD(t, Config{URL: "file://" + dir + "/"})
	var buf bytes.Buffer
	res, err := d.Fetch(t.Context(), Request{URL: "file://" + p, Expected: Expect{Size: 70000, Digests: map[string]string{"sha256": hexSum(b)}}}, &buf)
	if err != nil || !bytes.Equal(buf.Bytes(), b) || res.Status != 200 || res.Digests["sha256"] != hexSum(b) {
		t.Fatalf("err = %v, res %+v", err, res)
	}
	// Relative to the remote's file:// URL, with a range.
	buf.Reset()
	res, err = d.Fetch(t.Context(), Request{URL: "a%20file.bin", Range: &[2]int64{10, 19}}, &buf)
	if err != nil || !bytes.Equal(buf.Bytes(), b[10:20]) || res.Status != 206 {
		t.Fatalf("range: err = %v, res %+v", err, res)
	}
	_, err = d.Fetch(t.Context(), Request{URL: "file://" + p, Expected: Expect{Size: 69999}}, io.Discard)
	var se *SizeError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want SizeError", err)
	}
	if _, err := d.Fetch(t.Context(), Request{URL: "file://" + dir + "/nope"}, io.Discard); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

func TestRelativeURLAndBadRequests(t *testing.T) {
	t.Parallel()
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	d := newD(t, Config{URL: srv.URL + "/repo/PULP_MANIFEST"})
	var buf bytes.Buffer
	if _, err := d.Fetch(t.Context(), Request{URL: "pkgs/a.iso"}, &buf); err != nil || buf.String() != "/repo/pkgs/a.iso" {
		t.Fatalf("err = %v, got %q", err, buf.String())
	}
	for _, r := range []Request{
		{URL: "ftp://x/y"},
		{URL: srv.URL, Expected: Expect{Digests: map[string]string{"crc32": "00"}}},
		{URL: srv.URL, Range: &[2]int64{5, 2}},
	} {
		if _, err := d.Fetch(t.Context(), r, io.Discard); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if _, err := newD(t, Config{}).Fetch(t.Context(), Request{URL: "relative"}, io.Discard); err == nil {
		t.Error("relative url without remote url accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"concurrency": {DownloadConcurrency: -1},
		"retries":     {MaxRetries: intp(-1)},
		"rate":        {RateLimit: -5},
		"timeout":     {SockReadTimeout: -time.Second},
		"ca":          {CACert: "not pem"},
		"client half": {ClientCert: "x"},
		"client pem":  {ClientCert: "x", ClientKey: "y"},
		"proxy":       {ProxyURL: "socks5://p:1"},
		"url":         {URL: "http://a b:c/%zz"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{}, WithChecksums("crc32")); err == nil {
		t.Error("unknown checksum accepted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "-1": 0, "junk": 0, "99999": maxRetryAfter,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	b := backoff{base: 100 * time.Millisecond, limit: time.Second}
	for retry, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 9: time.Second} {
		for range 50 {
			if d := b.delay(retry); d < hi/2 || d > hi {
				t.Fatalf("retry %d waits %s, want %s..%s", retry, d, hi/2, hi)
			}
		}
	}
}
