package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/tracing"
)

// bufSize is the copy buffer, one per download in flight, pooled.
const bufSize = 256 << 10

// Downloader downloads for one remote. It is safe for concurrent use.
type Downloader struct {
	base       *url.URL // nil: request URLs must be absolute
	client     *http.Client
	transport  *http.Transport
	sem        chan struct{}
	pace       *pacer
	backoff    backoff
	maxRetries int
	total      time.Duration
	connect    time.Duration
	sockRead   time.Duration
	header     http.Header // the remote's headers and User-Agent
	username   string
	password   string
	checksums  []string
	log        *slog.Logger
	bufs       sync.Pool
	tokens     *tokenCache // bearer tokens of registries (auth.go)
	meter      Meter
}

// Option adjusts a Downloader built by [New].
type Option func(*Downloader)

// WithLogger logs retries (warn) and finished downloads (debug) to l, with
// component=download. Add the remote's name to l with l.With("remote", name).
// The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(d *Downloader) { d.log = l.With("component", "download") }
}

// WithChecksums names digests computed for every download in addition to
// sha256 and the expected ones, e.g. the configured allowed checksums.
func WithChecksums(names ...string) Option {
	return func(d *Downloader) { d.checksums = slices.Clone(names) }
}

// Meter counts the bytes received from remotes, e.g. for metrics.
type Meter interface {
	AddDownloadBytes(n int64)
}

// WithMeter counts every body byte read, failed and retried attempts too.
func WithMeter(m Meter) Option {
	return func(d *Downloader) { d.meter = m }
}

// WithBackoff sets the exponential back-off: the first retry waits between
// base/2 and base, each later one twice as long, never more than limit.
// The default is 1 s doubling up to 60 s, which with the default three
// retries waits about 3.5-7 s in all.
func WithBackoff(base, limit time.Duration) Option {
	return func(d *Downloader) { d.backoff = backoff{base: base, limit: max(base, limit)} }
}

// New builds the Downloader of one remote. It fails on invalid settings:
// negative numbers, unparsable PEM or URLs, unknown checksum names.
func New(cfg Config, opts ...Option) (*Downloader, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("download config: %w", err)
	}
	conc := cfg.DownloadConcurrency
	if conc == 0 {
		conc = DefaultDownloadConcurrency
	}
	tr, err := cfg.transport(conc)
	if err != nil {
		return nil, fmt.Errorf("download config: %w", err)
	}
	d := &Downloader{
		client:     &http.Client{Transport: tr},
		transport:  tr,
		sem:        make(chan struct{}, conc),
		pace:       newPacer(cfg.RateLimit),
		backoff:    backoff{base: time.Second, limit: time.Minute},
		maxRetries: DefaultMaxRetries,
		total:      cfg.TotalTimeout,
		connect:    orDefault(cfg.ConnectTimeout, DefaultConnectTimeout),
		sockRead:   orDefault(cfg.SockReadTimeout, DefaultSockReadTimeout),
		header:     remoteHeader(cfg),
		username:   cfg.Username,
		password:   cfg.Password,
		log:        slog.New(slog.DiscardHandler),
		bufs:       sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }},
		tokens:     newTokenCache(),
	}
	if cfg.MaxRetries != nil {
		d.maxRetries = *cfg.MaxRetries
	}
	if cfg.URL != "" {
		d.base, _ = parseURL(cfg.URL) // validated above
	}
	for _, o := range opts {
		o(d)
	}
	if _, err := digest.New(d.checksums...); err != nil {
		return nil, fmt.Errorf("download config: checksums: %w", err)
	}
	return d, nil
}

// remoteHeader is the remote's headers plus the User-Agent.
func remoteHeader(cfg Config) http.Header {
	h := http.Header{}
	ua := cfg.UserAgent
	if ua == "" {
		ua = defaultUserAgent()
	}
	for _, m := range cfg.Headers {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if strings.EqualFold(k, "User-Agent") {
				ua += " " + m[k]
				continue
			}
			h.Add(k, m[k])
		}
	}
	h.Set("User-Agent", ua)
	return h
}

// Close drops the idle connections. The Downloader stays usable.
func (d *Downloader) Close() { d.transport.CloseIdleConnections() }

// Expect is what a download must match.
type Expect struct {
	// Size is the expected length in bytes. Zero or negative (-1 by
	// convention) means unknown, so the zero Expect checks nothing; an
	// expected empty body is still checked by its digests.
	Size int64
	// Digests maps digest names (digest.Names) to lowercase or uppercase
	// hex; each is computed and compared.
	Digests map[string]string
}

func (e Expect) sizeKnown() bool { return e.Size > 0 }

// Request is one download.
type Request struct {
	// URL is absolute (http, https, file) or relative to Config.URL.
	URL string
	// Expected is checked against the bytes delivered to the writer.
	Expected Expect
	// Header replaces the remote's headers of the same names.
	Header http.Header
	// Method is GET (the default) or HEAD; a HEAD writes nothing to w.
	Method string
	// AnyStatus returns a final non-2xx answer as a Result (Status and
	// Header, body discarded) rather than an *HTTPError; 429 and 5xx are
	// still retried first. A plugin's fetch sees every status this way.
	AnyStatus bool
	// Range asks for bytes Range[0] through Range[1], inclusive; Range[1]
	// below zero means to the end. A server answering 200 instead of 206
	// has its body cut down to the range. Expected applies to the range.
	Range *[2]int64
}

// Result describes a finished download.
type Result struct {
	// Size is the number of bytes written.
	Size int64
	// Digests holds sha256, the expected digests and those of
	// [WithChecksums], as lowercase hex.
	Digests map[string]string
	// Status is the HTTP status (200 or 206 for file:// URLs).
	Status int
	// Header is the response's header; nil for file:// URLs.
	Header http.Header
	// URL is the final URL after redirects, without userinfo.
	URL string
}

// Rewinder is a writer that can discard what it was given and start again.
// [Downloader.Fetch] rewinds it before a retry that follows written bytes.
type Rewinder interface {
	io.Writer
	Rewind() error
}

// Fetch downloads req into w, hashing and checking it; see the package
// documentation for retries. Unless w is a [Rewinder], no retry happens
// after the first byte reached w. On a size or digest error w has received
// the bad bytes: discard them.
func (d *Downloader) Fetch(ctx context.Context, req Request, w io.Writer) (res Result, err error) {
	u, err := d.resolve(req.URL)
	if err != nil {
		return Result{}, err
	}
	red := redact(u)
	ctx, span := tracing.Start(ctx, "download "+u.Host, tracing.Client, tracing.String("url.full", red))
	defer func() {
		span.SetAttrs(tracing.Int("http.response.status_code", int64(res.Status)), tracing.Int("pulpo.download.bytes", res.Size))
		span.End(err)
	}()
	names, err := d.digestNames(req.Expected)
	if err != nil {
		return Result{}, fmt.Errorf("download %s: %w", red, err)
	}
	if r := req.Range; r != nil && (r[0] < 0 || r[1] >= 0 && r[1] < r[0]) {
		return Result{}, fmt.Errorf("download %s: invalid range %d-%d", red, r[0], r[1])
	}
	if err := d.acquire(ctx); err != nil {
		return Result{}, fmt.Errorf("download %s: %w", red, err)
	}
	defer func() { <-d.sem }()
	start := time.Now()
	if u.Scheme == "file" {
		return d.fetchFile(ctx, u, red, req, names, w)
	}
	cw := &countingWriter{w: w}
	for attempt := 1; ; attempt++ {
		res, err := d.attempt(ctx, u, red, req, names, cw, attempt > d.maxRetries)
		if err == nil {
			d.log.DebugContext(ctx, "downloaded", "url", red, "status", res.Status, "bytes", res.Size,
				"attempts", attempt, "duration_ms", time.Since(start).Milliseconds())
			return res, nil
		}
		wait, retry := retryWait(err)
		if ctx.Err() != nil || !retry || attempt > d.maxRetries {
			if attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return Result{}, err
		}
		if cw.n > 0 {
			rw, ok := w.(Rewinder)
			if !ok {
				return Result{}, fmt.Errorf("%w (no retry: %d bytes already written)", err, cw.n)
			}
			if rerr := rw.Rewind(); rerr != nil {
				return Result{}, fmt.Errorf("download %s: rewind for retry: %w", red, errors.Join(rerr, err))
			}
			cw.n = 0
		}
		if wait == 0 {
			wait = d.backoff.delay(attempt)
		}
		d.log.WarnContext(ctx, "download retry", "url", red, "attempt", attempt, "max_retries", d.maxRetries,
			"wait_ms", wait.Milliseconds(), "error", err.Error())
		if serr := sleep(ctx, wait); serr != nil {
			return Result{}, fmt.Errorf("download %s: %w", red, serr)
		}
	}
}

// FetchToFile downloads req into a new temporary file in dir and returns its
// path; the caller owns the file. On any error no file is left behind.
func (d *Downloader) FetchToFile(ctx context.Context, req Request, dir string) (string, Result, error) {
	f, err := os.CreateTemp(dir, "download-*")
	if err != nil {
		name := req.URL
		if u, uerr := d.resolve(req.URL); uerr == nil {
			name = redact(u)
		}
		return "", Result{}, fmt.Errorf("download %s: %w", name, err)
	}
	res, err := d.Fetch(ctx, req, &fileRewinder{f})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("download %s: %w", res.URL, cerr)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", Result{}, err
	}
	return f.Name(), res, nil
}

func (d *Downloader) resolve(raw string) (*url.URL, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	if !u.IsAbs() && d.base != nil {
		u = d.base.ResolveReference(u)
	}
	switch u.Scheme {
	case "http", "https", "file":
		return u, nil
	case "":
		return nil, fmt.Errorf("download %s: relative url and no remote url", redact(u))
	}
	return nil, fmt.Errorf("download %s: unsupported scheme %q", redact(u), u.Scheme)
}

// digestNames is sha256, the configured checksums and the expected ones, in
// digest.Names order.
func (d *Downloader) digestNames(exp Expect) ([]string, error) {
	want := map[string]bool{"sha256": true}
	for _, n := range d.checksums {
		want[n] = true
	}
	for n := range exp.Digests {
		want[strings.ToLower(n)] = true
	}
	names := make([]string, 0, len(want))
	for _, n := range digest.Names {
		if want[n] {
			names = append(names, n)
			delete(want, n)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("unknown digest %q", n)
	}
	return names, nil
}

func (d *Downloader) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// attempt is one HTTP request.
func (d *Downloader) attempt(parent context.Context, u *url.URL, red string, req Request, names []string, w io.Writer, last bool) (Result, error) {
	if err := d.pace.wait(parent); err != nil {
		return Result{}, fmt.Errorf("download %s: %w", red, err)
	}
	ctx := parent
	if d.total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d.total, &TimeoutError{URL: red, Phase: "total_timeout", After: d.total})
		defer cancel()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// fail reports the timeout that ended the attempt rather than the
	// cancellation error it caused, and the caller's end as such.
	fail := func(err error) error {
		if parent.Err() != nil {
			return fmt.Errorf("download %s: %w", red, context.Cause(parent))
		}
		var te *TimeoutError
		if ctx.Err() != nil && errors.As(context.Cause(ctx), &te) {
			return te
		}
		return err
	}

	// For each request (redirects included) connect_timeout runs until a
	// connection is had, sock_read_timeout from the request's last byte to
	// the response headers; later timedReader arms sock_read_timeout
	// around each read of the body.
	connTimer := time.AfterFunc(time.Hour, func() {
		cancel(&TimeoutError{URL: red, Phase: "connect_timeout", After: d.connect})
	})
	connTimer.Stop()
	defer connTimer.Stop()
	sockTimer := time.AfterFunc(time.Hour, func() {
		cancel(&TimeoutError{URL: red, Phase: "sock_read_timeout", After: d.sockRead})
	})
	sockTimer.Stop()
	defer sockTimer.Stop()
	trace := &httptrace.ClientTrace{
		GetConn:      func(string) { sockTimer.Stop(); connTimer.Reset(d.connect) },
		GotConn:      func(httptrace.GotConnInfo) { connTimer.Stop() },
		WroteRequest: func(httptrace.WroteRequestInfo) { sockTimer.Reset(d.sockRead) },
	}
	tctx := httptrace.WithClientTrace(ctx, trace)
	// The caller's own Authorization wins; otherwise a bearer token this
	// remote already holds for the host goes out at once.
	callerAuth := req.Header.Get("Authorization") != ""
	bearer := ""
	if !callerAuth {
		bearer = d.tokens.forHost(u.Host)
	}
	resp, err := d.send(tctx, u, red, req, bearer)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && !callerAuth {
		// A registry asking for a bearer token: get one and try again within
		// this attempt. A cached token the server refuses (revoked, or expired
		// by its clock) is replaced by a fresh one, once; a fresh one refused
		// is final.
		if ch, ok := bearerChallenge(resp.Header.Values("Www-Authenticate")); ok {
			discard(resp)
			key := tokenKey{realm: ch.params["realm"], service: ch.params["service"], scope: ch.params["scope"]}
			fetch := func() (token, error) { return d.fetchToken(tctx, u, red, ch) }
			refused := bearer
			for try := 0; ; try++ {
				tok, fresh, terr := d.tokens.get(ctx, u.Host, key, refused, fetch)
				if terr != nil {
					connTimer.Stop()
					sockTimer.Stop()
					return Result{}, fail(terr)
				}
				resp, err = d.send(tctx, u, red, req, tok)
				if err != nil || resp.StatusCode != http.StatusUnauthorized {
					break
				}
				discard(resp)
				if fresh || try > 0 {
					connTimer.Stop()
					sockTimer.Stop()
					return Result{}, fmt.Errorf("%w: a fresh bearer token from %s was refused too",
						&HTTPError{URL: redact(resp.Request.URL), Status: resp.StatusCode}, realmOf(u, ch.params["realm"]))
				}
				refused = tok
			}
		}
	}
	connTimer.Stop()
	sockTimer.Stop()
	if err != nil {
		return Result{}, fail(err)
	}
	defer resp.Body.Close()
	res := Result{Status: resp.StatusCode, Header: resp.Header, URL: redact(resp.Request.URL)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		discard(resp)
		he := &HTTPError{URL: res.URL, Status: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if req.AnyStatus {
			if _, retry := retryWait(he); !retry || last {
				return res, nil
			}
		}
		return Result{}, he
	}
	if req.Method == http.MethodHead {
		res.Digests = map[string]string{}
		return res, nil
	}

	var body io.Reader = &timedReader{r: resp.Body, t: sockTimer, d: d.sockRead}

	exp := req.Expected
	if r := req.Range; r != nil && resp.StatusCode == http.StatusOK {
		// The server ignored Range: cut the range out of the whole body.
		if _, err := io.CopyN(io.Discard, body, r[0]); err != nil {
			return Result{}, fail(fmt.Errorf("download %s: skip to range start %d: %w", red, r[0], err))
		}
		if r[1] >= 0 {
			body = io.LimitReader(body, r[1]-r[0]+1)
		}
	} else if exp.sizeKnown() && resp.ContentLength >= 0 && resp.ContentLength != exp.Size {
		return Result{}, &SizeError{URL: red, Expected: exp.Size, Actual: resp.ContentLength}
	}

	res.Size, res.Digests, err = d.copyChecked(body, w, exp, names, red)
	if err != nil {
		return Result{}, fail(err)
	}
	return res, nil
}

// send makes one HTTP request of an attempt: the remote's headers, the
// request's, then the credentials (bearer when not empty, else the remote's
// basic credentials unless the request brings its own Authorization).
func (d *Downloader) send(ctx context.Context, u *url.URL, red string, req Request, bearer string) (*http.Response, error) {
	method := http.MethodGet
	if req.Method == http.MethodHead {
		method = http.MethodHead
	}
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, final(fmt.Errorf("download %s: invalid request", red))
	}
	hr.Header = d.header.Clone()
	for k, vs := range req.Header {
		hr.Header[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	if tp := tracing.Traceparent(ctx); tp != "" {
		hr.Header.Set("Traceparent", tp) // the upstream may continue the trace
	}
	switch {
	case hr.Header.Get("Authorization") != "":
	case bearer != "":
		hr.Header.Set("Authorization", "Bearer "+bearer)
	case d.username != "" || d.password != "":
		hr.SetBasicAuth(d.username, d.password)
	}
	if r := req.Range; r != nil {
		if r[1] >= 0 {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		} else {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-", r[0]))
		}
	}
	resp, err := d.client.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL keeps the username
		}
		return nil, fmt.Errorf("download %s: %w", red, err)
	}
	return resp, nil
}

// discard reads a little of an unwanted body, which lets a short error body
// keep the connection, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

// copyChecked streams r to w through a pooled buffer while hashing, then
// checks size and digests.
func (d *Downloader) copyChecked(r io.Reader, w io.Writer, exp Expect, names []string, red string) (int64, map[string]string, error) {
	h, err := digest.New(names...)
	if err != nil {
		return 0, nil, final(fmt.Errorf("download %s: %w", red, err))
	}
	if exp.sizeKnown() {
		r = io.LimitReader(r, exp.Size+1) // a longer body is wrong; stop reading it
	}
	bp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := r.Read(buf)
		if n > 0 && d.meter != nil {
			d.meter.AddDownloadBytes(int64(n))
		}
		if n > 0 {
			if _, werr := digest.Tee(w, h, buf[:n]); werr != nil {
				return 0, nil, final(fmt.Errorf("download %s: write: %w", red, werr))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, nil, fmt.Errorf("download %s: read body: %w", red, rerr)
		}
	}
	if exp.sizeKnown() && h.Size() != exp.Size {
		return 0, nil, &SizeError{URL: red, Expected: exp.Size, Actual: h.Size()}
	}
	sums := h.Sums()
	algs := make([]string, 0, len(exp.Digests))
	for a := range exp.Digests {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	for _, a := range algs {
		want := exp.Digests[a]
		if got := sums[strings.ToLower(a)]; got != strings.ToLower(want) {
			return 0, nil, &DigestError{URL: red, Algorithm: strings.ToLower(a), Expected: want, Actual: got}
		}
	}
	return h.Size(), sums, nil
}

// timedReader arms t for d around each Read: sock_read_timeout.
type timedReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (t *timedReader) Read(p []byte) (int, error) {
	t.t.Reset(t.d)
	n, err := t.r.Read(p)
	t.t.Stop()
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileRewinder makes a temporary file a Rewinder.
type fileRewinder struct{ f *os.File }

var _ Rewinder = (*fileRewinder)(nil)

func (r *fileRewinder) Write(p []byte) (int, error) { return r.f.Write(p) }

func (r *fileRewinder) Rewind() error {
	if err := r.f.Truncate(0); err != nil {
		return err
	}
	_, err := r.f.Seek(0, io.SeekStart)
	return err
}
