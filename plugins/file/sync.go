package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// Progress report codes and messages, as pulp_file reports them.
const (
	codeDownloading = "sync.downloading.metadata"
	codeParsing     = "sync.parsing.metadata"
	msgDownloading  = "Downloading Metadata"
	msgParsing      = "Parsing Metadata"
	// progressEvery is how many entries pass between two parsing reports.
	progressEvery = 1000
)

// syncDetails is what a sync leaves for the next one (Repository.LastSyncDetails).
type syncDetails struct {
	URL            string `json:"url"`
	Policy         string `json:"policy"`
	Mirror         bool   `json:"mirror"`
	ManifestSHA256 string `json:"manifest_sha256"`
	// BaseVersion is the repository's latest version when the sync started.
	BaseVersion int64 `json:"base_version"`
	Entries     int64 `json:"entries"`
}

// syncOptions are the file plugin's sync options (describe's sync_options).
type syncOptions struct {
	// Optimize skips a sync when nothing changed (pulp_file's optimize, default true).
	Optimize *bool `json:"optimize"`
}

// codeSkipped is pulp_file's progress report for an optimized-away sync.
const (
	codeSkipped = "sync.was_skipped"
	msgSkipped  = "Sync was skipped"
)

// unchanged reports whether pulp_file would skip this sync as optimized: the last sync
// from this remote (the host hands its details back only while the repository's latest
// version is still the one it left) had the same url and manifest checksum, and neither
// did the policy become immediate nor mirror become true. It reports the skip as progress.
func unchanged(ctx context.Context, s *sdk.Sync, manifestSHA256 string) (bool, error) {
	var opts syncOptions
	if err := s.Options(&opts); err != nil {
		return false, err
	}
	if opts.Optimize != nil && !*opts.Optimize {
		return false, nil
	}
	var last syncDetails
	ok, err := s.LastSyncDetails(&last)
	if err != nil || !ok {
		return false, err
	}
	if last.URL != s.Remote.URL || last.ManifestSHA256 != manifestSHA256 ||
		last.Policy != abi.PolicyImmediate && s.Remote.Policy == abi.PolicyImmediate ||
		!last.Mirror && s.Mirror {
		return false, nil
	}
	err = s.Progress(ctx, abi.ProgressReport{Code: codeSkipped, Message: msgSkipped, State: abi.StateSkipped})
	return err == nil, err
}

// syncFirstStage fetches the remote's manifest and emits one file.file unit per entry,
// each with one artifact next to the manifest.
func syncFirstStage(ctx context.Context, s *sdk.Sync) error {
	base, err := parseManifestURL(s.Remote.URL)
	if err != nil {
		return err
	}
	if err := s.Progress(ctx, abi.ProgressReport{Code: codeDownloading, Message: msgDownloading, State: abi.StateRunning, Total: 1}); err != nil {
		return err
	}
	f, err := s.Fetch(ctx, s.Remote.URL, sdk.Name(defaultManifest))
	if err != nil {
		if se := (*sdk.StatusError)(nil); errors.As(err, &se) {
			return sdk.Errorf(abi.CodeUpstream, "fetch manifest %s: http status %d", s.Remote.URL, se.Status)
		}
		return err
	}
	if err := s.Progress(ctx, abi.ProgressReport{Code: codeDownloading, Message: msgDownloading, State: abi.StateCompleted, Done: 1, Total: 1}); err != nil {
		return err
	}
	if skip, err := unchanged(ctx, s, f.SHA256); err != nil || skip {
		if err != nil {
			return err
		}
		s.Skip()
		// The details stay those of the sync that made the repository's content.
		return s.SetDetails(s.Repository.LastSyncDetails)
	}

	body, err := f.Open()
	if err != nil {
		return fmt.Errorf("open manifest: %w", err)
	}
	defer body.Close()
	n, err := emitManifest(ctx, s, base, NewManifestReader(body))
	if err != nil {
		return err
	}

	if s.Mirror {
		// Like pulp_file, a mirror's publication serves the upstream manifest itself, under
		// its upstream name.
		s.KeepMetadata(f, base.name)
	}
	return s.SetDetails(syncDetails{
		URL: s.Remote.URL, Policy: s.Remote.Policy, Mirror: s.Mirror, ManifestSHA256: f.SHA256,
		BaseVersion: s.Repository.LatestVersion, Entries: n,
	})
}

// emitManifest emits a unit per manifest entry and returns how many it emitted.
func emitManifest(ctx context.Context, s *sdk.Sync, base *manifestURL, r *ManifestReader) (int64, error) {
	deferred := s.Deferred()
	var n int64
	report := func(state string) error {
		rep := abi.ProgressReport{Code: codeParsing, Message: msgParsing, State: state, Done: n}
		if state == abi.StateCompleted {
			rep.Total = n
		}
		return s.Progress(ctx, rep)
	}
	if err := report(abi.StateRunning); err != nil {
		return n, err
	}
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if me := (*ManifestError)(nil); errors.As(err, &me) {
			return n, sdk.Errorf(abi.CodeUpstream, "%s: %v", s.Remote.URL, me)
		}
		if err != nil {
			return n, err
		}
		art := abi.DeclarativeArtifact{
			RelativePath: e.RelativePath,
			URL:          base.resolve(e.RelativePath),
			SHA256:       e.SHA256,
			Size:         e.Size,
			Deferred:     deferred,
		}
		dc := abi.DeclarativeContent{Type: fileType, Fields: fileFields(e), Artifacts: []abi.DeclarativeArtifact{art}}
		if err := s.EmitDeclarative(ctx, dc); err != nil {
			return n, err
		}
		n++
		if n%progressEvery == 0 {
			if s.Cancelled() {
				return n, sdk.Errorf(abi.CodeCancelled, "sync cancelled after %d manifest entries", n)
			}
			if err := report(abi.StateRunning); err != nil {
				return n, err
			}
		}
	}
	if d := r.Duplicates(); d > 0 {
		s.Log.Info("skipped repeated manifest lines", "url", s.Remote.URL, "repeats", d)
	}
	return n, report(abi.StateCompleted)
}

// manifestURL is a parsed manifest URL: files are found relative to its directory.
type manifestURL struct {
	// prefix is the URL up to the manifest's directory, ending in "/"; suffix is what
	// follows a file's path ("?" and the manifest URL's query, if it has one).
	prefix, suffix string
	// name is the manifest's file name (unescaped), or PULP_MANIFEST when the URL has
	// none that is a clean relative path.
	name string
}

// parseManifestURL checks the remote's url (absolute, hierarchical, with a scheme) and
// prepares resolve.
func parseManifestURL(raw string) (*manifestURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote url %q: %v", raw, err)
	}
	if u.Scheme == "" || u.Opaque != "" || (u.Host == "" && u.Scheme != "file") {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote url %q: want an absolute url of the manifest, like https://example.org/repo/PULP_MANIFEST", raw)
	}
	m := &manifestURL{name: defaultManifest}
	if name := path.Base(u.Path); u.Path != "" && !strings.HasSuffix(u.Path, "/") && abi.CleanRelativePath(name) {
		m.name = name
	}
	if u.RawQuery != "" || u.ForceQuery {
		m.suffix = "?" + u.RawQuery
	}
	// Let net/url render everything before the path once, with a file name made of
	// unreserved characters standing in for the file's path: it appears verbatim.
	const stand = "PULPO-FILE"
	dir := "/"
	if ep := u.EscapedPath(); strings.Contains(ep, "/") {
		dir = ep[:strings.LastIndexByte(ep, '/')+1]
	}
	v := *u
	v.RawPath = dir + stand
	v.Path, err = url.PathUnescape(v.RawPath)
	if err != nil {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote url %q: %v", raw, err)
	}
	v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = "", false, "", ""
	full := v.String()
	if !strings.HasSuffix(full, dir+stand) {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote url %q: cannot resolve file urls against it", raw)
	}
	m.prefix = strings.TrimSuffix(full, stand)
	return m, nil
}

// resolve returns the URL of the file at relativePath (a clean relative path): the
// manifest's directory joined with the path, each segment percent-encoded. Like pulp_file,
// the manifest URL's query is kept; its fragment is dropped.
func (m *manifestURL) resolve(relativePath string) string {
	var b strings.Builder
	b.Grow(len(m.prefix) + len(relativePath) + len(relativePath)/2 + len(m.suffix))
	b.WriteString(m.prefix)
	for i := range len(relativePath) {
		c := relativePath[i]
		if c == '/' || unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	b.WriteString(m.suffix)
	return b.String()
}

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c may stand for itself in a URL (RFC 3986 section 2.3).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// fileFields returns the JSON of File{e.RelativePath, e.SHA256}, byte for byte what
// json.Marshal writes, without its reflection (which costs more than everything else a
// unit needs inside a WebAssembly guest).
func fileFields(e Entry) []byte {
	b := make([]byte, 0, len(`{"relative_path":"","sha256":""}`)+len(e.RelativePath)+8+len(e.SHA256))
	b = append(b, `{"relative_path":`...)
	b = appendJSONString(b, e.RelativePath)
	b = append(b, `,"sha256":`...)
	b = appendJSONString(b, e.SHA256)
	return append(b, '}')
}

// appendJSONString appends s (valid UTF-8) as a JSON string escaped like encoding/json:
// quotes, backslashes, control characters, HTML-sensitive <, > and &, U+2028 and U+2029.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c == '"':
			esc = `\"`
		case c == '\\':
			esc = `\\`
		case c == '\n':
			esc = `\n`
		case c == '\r':
			esc = `\r`
		case c == '\t':
			esc = `\t`
		case c == '\b':
			esc = `\b`
		case c == '\f':
			esc = `\f`
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			esc = `\u00` + string(lowerHex[c>>4]) + string(lowerHex[c&0xf])
		case c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xa8: // U+2028, U+2029
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, lowerHex[s[i+2]&0xf])
			i += 2
			start = i + 1
			continue
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const lowerHex = "0123456789abcdef"
