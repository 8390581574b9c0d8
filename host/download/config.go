package download

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"time"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultDownloadConcurrency = 10
	DefaultMaxRetries          = 3
	DefaultConnectTimeout      = 60 * time.Second
	DefaultSockConnectTimeout  = 30 * time.Second
	DefaultSockReadTimeout     = 300 * time.Second
)

// Config is one remote's download settings, the download-related fields of a
// Pulp Remote. Zero values take the documented defaults.
type Config struct {
	// URL is the remote's URL; relative request URLs are resolved against it.
	URL string
	// CACert is PEM; its certificates are trusted in addition to the system
	// roots.
	CACert string
	// ClientCert and ClientKey are a PEM certificate and key presented to
	// servers that ask for one. Both or neither.
	ClientCert, ClientKey string
	// TLSValidation verifies server certificates. Pulp's default is true;
	// the zero value here is false, so callers must copy the remote's field.
	TLSValidation bool
	// ProxyURL is an http:// or https:// proxy, with ProxyUsername and
	// ProxyPassword sent as Proxy-Authorization. Empty: the environment's
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY apply.
	ProxyURL, ProxyUsername, ProxyPassword string
	// Username and Password are sent as HTTP basic auth.
	Username, Password string
	// Headers are added to every request, in order. A User-Agent given here
	// is appended to UserAgent, as Pulp does.
	Headers []map[string]string
	// DownloadConcurrency bounds simultaneous downloads (default 10).
	DownloadConcurrency int
	// MaxRetries is the number of retries after a failed attempt; nil means
	// 3, zero means no retry.
	MaxRetries *int
	// RateLimit is the number of requests per second, spaced evenly; 0 means
	// unlimited.
	RateLimit int
	// Timeouts; see the package documentation for what each covers and its
	// default.
	TotalTimeout, ConnectTimeout, SockConnectTimeout, SockReadTimeout time.Duration
	// UserAgent replaces the default "pulpo (go<version> <os>/<arch>)".
	UserAgent string
}

// validate reports every invalid field at once.
func (c *Config) validate() error {
	var errs []error
	if c.DownloadConcurrency < 0 {
		errs = append(errs, fmt.Errorf("download_concurrency %d: must be at least 1", c.DownloadConcurrency))
	}
	if c.MaxRetries != nil && *c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max_retries %d: must not be negative", *c.MaxRetries))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate_limit %d: must not be negative", c.RateLimit))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"total_timeout", c.TotalTimeout}, {"connect_timeout", c.ConnectTimeout},
		{"sock_connect_timeout", c.SockConnectTimeout}, {"sock_read_timeout", c.SockReadTimeout}} {
		if t.d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", t.name, t.d))
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		errs = append(errs, errors.New("client_cert and client_key: give both or neither"))
	}
	if c.URL != "" {
		if _, err := parseURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("url: %w", err))
		}
	}
	return errors.Join(errs...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func defaultUserAgent() string {
	return fmt.Sprintf("pulpo (%s %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// tlsConfig builds the client TLS settings from the PEM fields.
func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !c.TLSValidation} //nolint:gosec // the remote's tls_validation
	if c.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(c.CACert)) {
			return nil, errors.New("ca_cert: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" {
		cert, err := tls.X509KeyPair([]byte(c.ClientCert), []byte(c.ClientKey))
		if err != nil {
			// The error of X509KeyPair never quotes key material.
			return nil, fmt.Errorf("client_cert/client_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// proxy returns the Transport's proxy function.
func (c *Config) proxy() (func(*http.Request) (*url.URL, error), error) {
	if c.ProxyURL == "" {
		return http.ProxyFromEnvironment, nil
	}
	u, err := parseURL(c.ProxyURL)
	if err != nil {
		return nil, fmt.Errorf("proxy_url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("proxy_url: scheme %q: want http or https", u.Scheme)
	}
	if c.ProxyUsername != "" || c.ProxyPassword != "" {
		// The Transport sends URL userinfo as Proxy-Authorization: Basic,
		// for plain requests and for CONNECT.
		u.User = url.UserPassword(c.ProxyUsername, c.ProxyPassword)
	}
	return http.ProxyURL(u), nil
}

// transport builds the remote's one Transport.
func (c *Config) transport(concurrency int) (*http.Transport, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	proxy, err := c.proxy()
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: orDefault(c.SockConnectTimeout, DefaultSockConnectTimeout), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:             proxy,
		DialContext:       dialer.DialContext,
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: true,
		// Artifacts are checked byte for byte: never let the Transport
		// ask for gzip and transparently inflate (pulpcore sets aiohttp's
		// auto_decompress=False for the same reason).
		DisableCompression:    true,
		MaxIdleConns:          max(100, concurrency),
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The connect and sock_read timers of each attempt bound the TLS
		// handshake and the wait for response headers.
		TLSHandshakeTimeout: 0,
	}, nil
}

// parseURL parses without quoting the URL in its error, which may hold
// credentials.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("invalid url: %w", ue.Err)
		}
		return nil, errors.New("invalid url")
	}
	return u, nil
}
