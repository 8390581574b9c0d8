package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/s3"
	"github.com/pulpo/pulpo/host/storage/s3/s3test"
	"github.com/pulpo/pulpo/host/storage/storagetest"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// newDriver returns a driver over a new bucket, and checks when the test ends that no
// multipart upload was left behind, which a failed Put must abort.
func newDriver(t *testing.T, edit func(*s3.Config)) (*s3.Driver, string) {
	t.Helper()
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket)
	if edit != nil {
		edit(&cfg)
	}
	d, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkNoUploads(t, srv, bucket) })
	return d, bucket
}

func checkNoUploads(t *testing.T, srv *s3test.Server, bucket string) {
	t.Helper()
	ups, err := srv.Uploads(context.Background(), bucket, "")
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
		return
	}
	for _, u := range ups {
		t.Errorf("multipart upload left behind: key %s, id %s", *u.Key, *u.UploadId)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		d, _ := newDriver(t, nil)
		return d
	})
}

// TestConformancePrefix runs the suite with every driver under its own prefix of one
// shared bucket, and checks that nothing was written outside the prefixes.
func TestConformancePrefix(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	var mu sync.Mutex
	var prefixes []string
	t.Run("suite", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Driver {
			prefix := "install-" + randHex(4) + "/pulpo"
			mu.Lock()
			prefixes = append(prefixes, prefix+"/")
			mu.Unlock()
			cfg := srv.Config(bucket)
			cfg.Prefix = prefix
			d, err := s3.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return d
		})
	})
	checkNoUploads(t, srv, bucket)
	out, err := srv.Client.ListObjectsV2(t.Context(), &s3api.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) == 0 {
		t.Error("the suite stored nothing in the shared bucket")
	}
	for _, obj := range out.Contents {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(*obj.Key, p) }) {
			t.Errorf("object %q is outside every driver's prefix", *obj.Key)
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// smallParts makes Put switch to multipart uploads at S3's smallest part size, with two
// part buffers, so several parts are in flight in a few MiB.
func smallParts(c *s3.Config) {
	c.PartSize = s3.MinPartSize
	c.Concurrency = 2
}

func TestMultipart(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, smallParts)
	for _, size := range []int{s3.MinPartSize, 2 * s3.MinPartSize, 3*s3.MinPartSize + 12345} {
		data := randBytes(uint64(size), size)
		info, err := d.Put(t.Context(), "big", bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		if info.Size != int64(size) || info.SHA256 != sha(data) || info.Key != "big" {
			t.Errorf("Put(%d bytes) = %+v, want size %d, sha256 %s", size, info, size, sha(data))
		}
		if d := time.Since(info.ModTime); d < -time.Minute || d > time.Minute {
			t.Errorf("Put ModTime %v is not now", info.ModTime)
		}
		got := readAll(t, d, "big")
		if !bytes.Equal(got, data) {
			t.Errorf("read back %d bytes, differing from the %d put", len(got), size)
		}
	}
}

// TestMultipartFailure makes Puts fail after several parts were uploaded and checks the
// error, that the previous object is intact and (in newDriver) that the upload was aborted.
func TestMultipartFailure(t *testing.T) {
	t.Parallel()
	const total = 64 << 20
	const failAt = 3*s3.MinPartSize + 100 // after two parts went up, during the third or fourth
	d, _ := newDriver(t, smallParts)
	old := []byte("previous object")
	if _, err := d.Put(t.Context(), "obj", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	t.Run("reader error", func(t *testing.T) {
		r := &failingReader{r: io.LimitReader(mrand.NewChaCha8([32]byte{1}), total), after: failAt, fail: func() error { return errBoom }}
		if _, err := d.Put(t.Context(), "obj", r); !errors.Is(err, errBoom) {
			t.Errorf("Put = %v, want errBoom", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		r := &failingReader{r: io.LimitReader(mrand.NewChaCha8([32]byte{2}), total), after: failAt, fail: func() error { cancel(); return nil }}
		if _, err := d.Put(ctx, "obj", r); !errors.Is(err, context.Canceled) {
			t.Errorf("Put = %v, want context.Canceled", err)
		}
		if r.readsAfter > 0 {
			t.Errorf("Put read %d more times from its reader after ctx was canceled", r.readsAfter)
		}
	})
	if got := readAll(t, d, "obj"); !bytes.Equal(got, old) {
		t.Errorf("after failed Puts the object holds %q, want %q", got, old)
	}
}

// failingReader reads r and, in the read that takes it past after bytes, calls fail: it
// returns fail's error with that read's data, or, when fail returns nil (it cancelled a
// ctx), keeps serving data and counts the reads that follow.
type failingReader struct {
	r          io.Reader
	after      int
	n          int
	fail       func() error
	failed     bool
	readsAfter int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.failed {
		f.readsAfter++
	}
	n, err := f.r.Read(p)
	f.n += n
	if f.n > f.after && !f.failed {
		f.failed = true
		if ferr := f.fail(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// transport lets a test see and alter requests on their way to the server.
type transport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	reqs   []string // method and query of each request
	read   atomic.Int64
	modify func(*http.Request) // may replace the body; called before sending
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.reqs = append(tr.reqs, req.Method+" "+req.URL.RawQuery)
	tr.mu.Unlock()
	if tr.modify != nil {
		tr.modify(req)
	}
	resp, err := tr.base.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &tr.read}
	}
	return resp, err
}

func (tr *transport) requests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.reqs)
}

func (tr *transport) reset() {
	tr.mu.Lock()
	tr.reqs = nil
	tr.mu.Unlock()
	tr.read.Store(0)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func withTransport(tr *transport) func(*s3.Config) {
	tr.base = http.DefaultTransport.(*http.Transport).Clone()
	return func(c *s3.Config) { c.HTTPClient = &http.Client{Transport: tr} }
}

// flipFirstByte corrupts a request body after the request was signed, as a faulty network
// or proxy might.
type flipFirstByte struct {
	io.ReadCloser
	done bool
}

func (f *flipFirstByte) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 0xff
		f.done = true
	}
	return n, err
}

// TestCorruptBodyRefused checks that the server refuses an upload whose body was altered
// after it was signed, for a single PutObject and for a part of a multipart upload, and
// that nothing is stored. (TestPayloadHashSigned checks that the signature covers the
// body over HTTPS too, which this plain-HTTP server cannot show.)
func TestCorruptBodyRefused(t *testing.T) {
	t.Parallel()
	tr := &transport{}
	tr.modify = func(req *http.Request) {
		if req.Method == http.MethodPut && req.Body != nil && req.ContentLength > 0 {
			req.Body = &flipFirstByte{ReadCloser: req.Body}
		}
	}
	d, _ := newDriver(t, func(c *s3.Config) { smallParts(c); withTransport(tr)(c) })
	for _, size := range []int{1000, 2*s3.MinPartSize + 1} {
		if info, err := d.Put(t.Context(), "corrupt", bytes.NewReader(randBytes(3, size))); err == nil {
			t.Errorf("Put(%d bytes) of a body corrupted in transit = %+v, want an error", size, info)
		}
		if _, err := d.Stat(t.Context(), "corrupt"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after refused Put = %v, want ErrNotFound", err)
		}
	}
}

// TestPartFailure fails the upload of one part and checks that Put reports it and aborts.
func TestPartFailure(t *testing.T) {
	t.Parallel()
	tr := &transport{}
	tr.modify = func(req *http.Request) {
		if req.URL.Query().Get("partNumber") == "2" {
			req.Body = io.NopCloser(io.MultiReader(io.LimitReader(req.Body, 10), errReader{}))
		}
	}
	d, _ := newDriver(t, func(c *s3.Config) { smallParts(c); withTransport(tr)(c) })
	if info, err := d.Put(t.Context(), "obj", bytes.NewReader(randBytes(4, 3*s3.MinPartSize))); err == nil {
		t.Fatalf("Put with a failing part = %+v, want an error", info)
	} else if !strings.Contains(err.Error(), "part 2") {
		t.Errorf("Put error %q does not name part 2", err)
	}
	if _, err := d.Stat(t.Context(), "obj"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after failed Put = %v, want ErrNotFound", err)
	}
	if !slices.ContainsFunc(tr.requests(), func(r string) bool { return strings.HasPrefix(r, "DELETE uploadId=") }) {
		t.Errorf("no AbortMultipartUpload among %q", tr.requests())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("network broke") }

// TestServeContentLazy checks that a Range request reads only about the range, and that
// a full read takes a single GET.
func TestServeContentLazy(t *testing.T) {
	t.Parallel()
	tr := &transport{}
	d, _ := newDriver(t, withTransport(tr))
	const size = 16 << 20
	data := randBytes(5, size)
	if _, err := d.Put(t.Context(), "big", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rng      string
		want     []byte
		maxRead  int64
		wantGETs int
	}{
		{"", data, size, 1},
		{"bytes=10000000-10000099", data[10000000:10000100], 1 << 20, 2},
		{"bytes=100-199", data[100:200], 1 << 20, 1}, // within maxSkip of the open body
		{"bytes=-10", data[size-10:], 1 << 20, 2},
	} {
		tr.reset()
		r, err := d.Open(t.Context(), "big")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/big", nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "big", r.ModTime(), r)
		_ = r.Close()
		if !bytes.Equal(rec.Body.Bytes(), tt.want) {
			t.Errorf("Range %q: got %d bytes (status %d), want %d", tt.rng, rec.Body.Len(), rec.Code, len(tt.want))
		}
		if n := tr.read.Load(); n > tt.maxRead {
			t.Errorf("Range %q: read %d bytes from the server, want at most %d", tt.rng, n, tt.maxRead)
		}
		gets := 0
		for _, r := range tr.requests() {
			if strings.HasPrefix(r, "GET") {
				gets++
			}
		}
		if gets != tt.wantGETs {
			t.Errorf("Range %q: %d GETs (%q), want %d", tt.rng, gets, tr.requests(), tt.wantGETs)
		}
	}
}

// TestReaderPinned checks that a Reader never mixes objects: in a bucket without
// versioning, a ranged GET after the object was replaced fails with ErrChanged.
func TestReaderPinned(t *testing.T) {
	t.Parallel()
	d, _ := newDriver(t, nil)
	old, repl := randBytes(6, 2<<20), randBytes(7, 2<<20)
	ctx := t.Context()
	if _, err := d.Put(ctx, "obj", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, old[:100]) {
		t.Fatalf("first read: %v", err)
	}
	if _, err := d.Put(ctx, "obj", bytes.NewReader(repl)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(1<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(head); !errors.Is(err, s3.ErrChanged) {
		t.Errorf("Read after the object was replaced = %d, %v; want ErrChanged", n, err)
	}
	// A Reader opened now reads the new object, ranges included.
	r2, err := d.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Seek(1<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r2, head); err != nil || !bytes.Equal(head, repl[1<<20:1<<20+100]) {
		t.Errorf("ranged read of the new object: %v", err)
	}
	// Deleting the object is a change too.
	if err := d.Delete(ctx, "obj"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Read(head); !errors.Is(err, s3.ErrChanged) {
		t.Errorf("Read after the object was deleted = %v, want ErrChanged", err)
	}
}

// TestReaderVersioned checks that in a versioned bucket a Reader keeps reading the version
// it opened after the key was overwritten.
func TestReaderVersioned(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	d, bucket := newDriver(t, nil)
	ctx := t.Context()
	_, err := srv.Client.PutBucketVersioning(ctx, &s3api.PutBucketVersioningInput{
		Bucket:                  &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		t.Skipf("server does not support versioning: %v", err)
	}
	old, repl := randBytes(8, 1<<20), randBytes(9, 1<<20)
	if _, err := d.Put(ctx, "obj", bytes.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := d.Put(ctx, "obj", bytes.NewReader(repl)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(512<<10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, old[512<<10:]) {
		t.Errorf("ranged read of the opened version after an overwrite: %d bytes, %v; want the old bytes", len(got), err)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	tr := &transport{}
	d := s3test.NewDriver(t, withTransport(tr)) // the helper integration tests will use
	s3.SetListPageSize(d, 7)
	var want []string
	for i := range 25 {
		key := "p/" + strings.Repeat("k", i+1)
		want = append(want, key)
		if _, err := d.Put(t.Context(), key, strings.NewReader(key)); err != nil {
			t.Fatal(err)
		}
	}
	tr.reset()
	var got []string
	err := d.List(t.Context(), "p/", func(info storage.Info) error {
		got = append(got, info.Key)
		return nil
	})
	slices.Sort(got)
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List = %q, %v; want %q", got, err, want)
	}
	if n := len(tr.requests()); n != 4 {
		t.Errorf("List of 25 keys in pages of 7 sent %d requests, want 4", n)
	}
}

func TestPresignGet(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// Clients reach the store by another name than the host does.
	public := *u
	public.Host = strings.Replace(u.Host, "127.0.0.1", "localhost", 1)
	d, _ := newDriver(t, func(c *s3.Config) { c.PublicEndpoint = public.String() })
	data := randBytes(10, 100_000)
	if _, err := d.Put(t.Context(), "artifact/ab/cd", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var p s3.Presigner = d
	hdrs := s3.ResponseHeaders{ContentType: "text/x-pulpo", ContentDisposition: `attachment; filename="a b.txt"`}
	link, err := p.PresignGet(t.Context(), "artifact/ab/cd", time.Minute, hdrs)
	if err != nil {
		t.Fatal(err)
	}
	if lu, err := url.Parse(link); err != nil || lu.Host != public.Host {
		t.Errorf("presigned URL %s does not use the public endpoint %s", link, public.Host)
	}
	get := func(link string, rng string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, link, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	code, h, body := get(link, "")
	if code != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("GET presigned URL: status %d, %d bytes; want 200 and the object", code, len(body))
	}
	if h.Get("Content-Type") != hdrs.ContentType || h.Get("Content-Disposition") != hdrs.ContentDisposition {
		t.Errorf("GET presigned URL: Content-Type %q, Content-Disposition %q; want %q, %q",
			h.Get("Content-Type"), h.Get("Content-Disposition"), hdrs.ContentType, hdrs.ContentDisposition)
	}
	if code, _, body := get(link, "bytes=10-19"); code != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
		t.Errorf("ranged GET of presigned URL: status %d, %q", code, body)
	}
	// The signature covers the key and the response headers: another key, or another
	// content type, under the same signature is refused.
	if code, _, _ := get(strings.Replace(link, "artifact/ab/cd", "artifact/ab/ce", 1), ""); code != http.StatusForbidden {
		t.Errorf("GET with the key changed: status %d, want 403", code)
	}
	if code, _, _ := get(strings.Replace(link, "x-pulpo", "html", 1), ""); code != http.StatusForbidden {
		t.Errorf("GET with the content type changed: status %d, want 403", code)
	}
	if _, err := p.PresignGet(t.Context(), "../x", time.Minute, s3.ResponseHeaders{}); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("PresignGet(../x) = %v, want ErrInvalidKey", err)
	}
	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		if _, err := p.PresignGet(t.Context(), "artifact/ab/cd", ttl, s3.ResponseHeaders{}); err == nil {
			t.Errorf("PresignGet with ttl %v succeeded", ttl)
		}
	}
}

// TestNewChecksBucket checks that New refuses a missing bucket and wrong credentials.
func TestNewChecksBucket(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config("pulpo-test-missing-" + randHex(4))
	if _, err := s3.New(t.Context(), cfg); err == nil {
		t.Error("New with a missing bucket succeeded")
	}
	cfg = srv.Config(srv.NewBucket(t))
	cfg.SecretKey += "x"
	if _, err := s3.New(t.Context(), cfg); err == nil {
		t.Error("New with a wrong secret key succeeded")
	}
}

func readAll(t *testing.T, d storage.Driver, key string) []byte {
	t.Helper()
	r, err := d.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(b)) != r.Size() {
		t.Errorf("read %d bytes of %q, Size() = %d", len(b), key, r.Size())
	}
	return b
}
