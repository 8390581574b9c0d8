package download

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
)

// fetchFile serves a file:// URL from the local filesystem, as pulpcore's
// FileDownloader does: no rate limit, no retry (a local file does not get
// better by reading it again).
func (d *Downloader) fetchFile(ctx context.Context, u *url.URL, red string, req Request, names []string, w io.Writer) (Result, error) {
	if u.Host != "" && u.Host != "localhost" {
		return Result{}, fmt.Errorf("download %s: file url names host %q, want none or localhost", red, u.Host)
	}
	if !path.IsAbs(u.Path) {
		return Result{}, fmt.Errorf("download %s: file url needs an absolute path", red)
	}
	f, err := os.Open(filepath.FromSlash(u.Path))
	if err != nil {
		return Result{}, fmt.Errorf("download %s: %w", red, err)
	}
	defer f.Close()
	var r io.Reader = f
	status := http.StatusOK
	if rg := req.Range; rg != nil {
		if _, err := f.Seek(rg[0], io.SeekStart); err != nil {
			return Result{}, fmt.Errorf("download %s: %w", red, err)
		}
		if rg[1] >= 0 {
			r = io.LimitReader(f, rg[1]-rg[0]+1)
		}
		status = http.StatusPartialContent
	}
	size, sums, err := d.copyChecked(ctxReader{ctx, r}, w, req.Expected, names, red)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("download %s: %w", red, context.Cause(ctx))
		}
		return Result{}, err
	}
	return Result{Size: size, Digests: sums, Status: status, URL: red}, nil
}

// ctxReader stops a local copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
