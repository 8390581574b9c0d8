package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/stages"
)

// remoteDownloader adapts a remote's download.Downloader to the stages.
type remoteDownloader struct {
	d    *download.Downloader
	conc int
}

func (r remoteDownloader) Download(ctx context.Context, url string, header map[string]string, size int64, digests map[string]string, dir string) (string, int64, map[string]string, error) {
	var h http.Header
	for k, v := range header {
		if h == nil {
			h = http.Header{}
		}
		h.Set(k, v)
	}
	path, res, err := r.d.FetchToFile(ctx, download.Request{URL: url, Header: h, Expected: download.Expect{Size: size, Digests: digests}}, dir)
	return path, res.Size, res.Digests, err
}

func (r remoteDownloader) Stream(ctx context.Context, method, url string, header map[string]string, w io.Writer) (int, http.Header, error) {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	res, err := r.d.Fetch(ctx, download.Request{URL: url, Header: h, Method: method, AnyStatus: true}, w)
	return res.Status, res.Header, err
}

func (r remoteDownloader) Concurrency() int { return r.conc }

// newDownloader builds the sync's downloader of a remote.
func newDownloader(cfg config.Config, log *slog.Logger, opts ...download.Option) func(db.Remote) (stages.Downloader, error) {
	build := remoteDownloaders(cfg, log, opts...)
	return func(rm db.Remote) (stages.Downloader, error) {
		d, err := build(rm)
		if err != nil {
			return nil, err
		}
		conc := download.DefaultDownloadConcurrency
		if rm.DownloadConcurrency != nil && *rm.DownloadConcurrency > 0 {
			conc = *rm.DownloadConcurrency
		}
		return remoteDownloader{d: d, conc: conc}, nil
	}
}

// remoteDownloaders builds the downloader of a remote from its stored
// settings, computing the allowed checksums; syncs and the content app's
// on-demand fetches share it.
func remoteDownloaders(cfg config.Config, log *slog.Logger, opts ...download.Option) func(db.Remote) (*download.Downloader, error) {
	return func(rm db.Remote) (*download.Downloader, error) {
		secs := func(f *float64) time.Duration {
			if f == nil {
				return 0
			}
			return time.Duration(*f * float64(time.Second))
		}
		str := func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		}
		dc := download.Config{
			URL: rm.URL, CACert: str(rm.CACert), ClientCert: str(rm.ClientCert), ClientKey: str(rm.ClientKey),
			TLSValidation: rm.TLSValidation, ProxyURL: str(rm.ProxyURL), ProxyUsername: str(rm.ProxyUsername),
			ProxyPassword: str(rm.ProxyPassword), Username: str(rm.Username), Password: str(rm.Password),
			Headers: rm.Headers, MaxRetries: rm.MaxRetries,
			TotalTimeout: secs(rm.TotalTimeout), ConnectTimeout: secs(rm.ConnectTimeout),
			SockConnectTimeout: secs(rm.SockConnectTimeout), SockReadTimeout: secs(rm.SockReadTimeout),
			UserAgent: "pulpo/" + Version,
		}
		if rm.DownloadConcurrency != nil {
			dc.DownloadConcurrency = *rm.DownloadConcurrency
		}
		if rm.RateLimit != nil {
			dc.RateLimit = *rm.RateLimit
		}
		d, err := download.New(dc, append([]download.Option{download.WithLogger(log.With("remote", rm.Name)),
			download.WithChecksums(cfg.AllowedChecksums...)}, opts...)...)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
		return d, nil
	}
}

// contentTypeInfo gives the stages every declared content type's natural key.
func contentTypeInfo(plugins []*plugin.Plugin) map[string]stages.TypeInfo {
	out := map[string]stages.TypeInfo{}
	for _, p := range plugins {
		for _, ct := range p.Describe().ContentTypes {
			out[ct.Name] = stages.TypeInfo{NaturalKey: ct.NaturalKey}
		}
	}
	return out
}
