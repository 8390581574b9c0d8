// Package download fetches artifacts and metadata for remotes over HTTP(S)
// and from file:// URLs, hashing every byte on the way through.
//
// One [Downloader] serves one remote: it owns the remote's http.Client and
// Transport (so connections are reused), its TLS material, proxy, credentials,
// headers, concurrency limit, rate limit, timeouts and retry policy, all taken
// from a [Config]. Build it once per remote and share it between goroutines.
//
//	d, err := download.New(cfg, download.WithLogger(log), download.WithChecksums(digest.DefaultAllowed...))
//	path, res, err := d.FetchToFile(ctx, download.Request{URL: u, Expected: download.Expect{Size: n, Digests: ds}}, tmp)
//
// # One download
//
// [Downloader.Fetch] takes a slot of the remote's download_concurrency
// semaphore and holds it for the whole download, retries and back-off waits
// included (as pulpcore's DownloaderFactory does). Before each HTTP request it
// waits for the rate limiter. The body is streamed through one reused
// 256 KiB buffer into the caller's writer and into a [digest.Hasher] computing
// sha256, every digest named in [Expect] and every digest given with
// [WithChecksums]; whole bodies are never held in memory. At the end the size
// and digests are checked against [Expect].
//
// # Retries
//
// A download is tried at most MaxRetries+1 times. These are retried, with
// exponential back-off and jitter: connection errors, timeouts ([TimeoutError]),
// HTTP 429 and 5xx ([HTTPError]; a Retry-After header sets the wait), and a
// size or digest mismatch ([SizeError], [DigestError]). Other 4xx answers,
// TLS certificate errors, write errors, file:// errors and the caller's
// context ending are final at once.
//
// A retry starts over from the first byte. [Downloader.FetchToFile] truncates
// its file. [Downloader.Fetch] can only retry after bytes have reached its
// writer if that writer is a [Rewinder]; otherwise an error after the first
// written byte is returned as it is. Failures before the body (connection
// errors, 429, 5xx, a Content-Length that contradicts [Expect.Size]) are
// always retried.
//
// # Authentication
//
// The remote's username and password go out as HTTP basic auth with every
// request. A 401 carrying a "WWW-Authenticate: Bearer realm=...,service=...,
// scope=..." challenge (container registries) starts the token flow: the
// realm is asked for a token (with the basic credentials if the remote has
// them, anonymously otherwise), the request is sent once more with
// "Authorization: Bearer <token>" within the same attempt, and the token is
// cached per (realm, service, scope) for its expires_in (default 60 s). Later
// requests to the same host carry the cached token from the start. A token
// the server refuses is renewed once; a refused login at the realm is final
// and its error names the URL, the realm and whose credentials failed.
//
// # Errors
//
// [HTTPError], [DigestError], [SizeError] and [TimeoutError] all carry the URL
// and are returned wrapped; use errors.As. URLs in errors, results and logs
// have their userinfo removed; credentials never appear in them.
//
// # Timeouts
//
// Zero durations in [Config] take these defaults (pulpcore leaves them to
// aiohttp, whose factory docstring promises "total None, sock 5 min"):
//
//	TotalTimeout        none    a whole attempt: connect, headers and body
//	ConnectTimeout      60 s    obtaining a connection: dial, proxy CONNECT, TLS handshake
//	SockConnectTimeout  30 s    the TCP dial alone
//	SockReadTimeout     300 s   waiting for response headers, and each read of the body
package download
